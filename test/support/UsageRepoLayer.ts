import { Layer } from "effect"
import type * as LedgerWriter from "../../src/usage/LedgerWriter.js"
import { make, UsageRepo } from "../../src/usage/UsageRepo.js"

/** The ledger with some of the writer's defaults replaced (a shorter replay interval, a shorter insert timeout). */
export const usageRepoWith = (options: Partial<LedgerWriter.LedgerWriterOptions>) => Layer.scoped(UsageRepo, make(options))
