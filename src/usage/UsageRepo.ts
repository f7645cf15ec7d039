import type { BigDecimal } from "effect"
import { Context, Data, Effect, Layer } from "effect"
import * as Path from "node:path"
import { Config } from "../Config.js"
import type { UsageRecord } from "../domain/UsageRecord.js"
import * as LedgerWriter from "./LedgerWriter.js"
import * as Spool from "./Spool.js"
import * as Spans from "../telemetry/Spans.js"
import * as UsageQueries from "./UsageQueries.js"

export type GroupBy = "day" | "month" | "model" | "caller"

/** The `caller` group of rows written without a caller (before callers existed, or with no token configured). */
export const noCaller = "(none)"

export interface UsageTotals {
  readonly calls: number
  readonly failedCalls: number
  readonly unknownCostCalls: number
  readonly promptTokens: number
  readonly completionTokens: number
  readonly totalTokens: number
  readonly costUsd: BigDecimal.BigDecimal
}

export interface UsageGroup extends UsageTotals {
  /** `YYYY-MM-DD`, `YYYY-MM`, the model id or the caller's name (`(none)` for rows without one), per `groupBy`. */
  readonly key: string
}

export interface Spend {
  readonly todayUsd: BigDecimal.BigDecimal
  readonly monthUsd: BigDecimal.BigDecimal
}

/** Narrows `recent` to the rows with these values; an absent field does not narrow. */
export interface CallFilter {
  readonly model?: string | undefined
  readonly status?: "success" | "error" | undefined
  readonly purpose?: string | undefined
  readonly caller?: string | undefined
}

export interface UsagePage {
  readonly rows: ReadonlyArray<UsageRecord>
  /** Pass as `before` to get the next (older) page; null at the end. */
  readonly nextCursor: string | null
}

/**
 * The `llm_api_usage` ledger. `record` resumes only once the row is durable (committed, or
 * spooled to disk when the database is unreachable), so it cannot fail.
 */
export class UsageRepo extends Context.Tag("UsageRepo")<UsageRepo, {
  readonly record: (row: UsageRecord) => Effect.Effect<void>
  /** `from` and `to` are UTC days, both inclusive. */
  readonly totals: (from: string, to: string, groupBy: GroupBy) => Effect.Effect<{
    readonly groups: ReadonlyArray<UsageGroup>
    readonly total: UsageTotals
  }, UsageQueryError>
  /** Spend of the current UTC day and month at `now`. */
  readonly spend: (now: Date) => Effect.Effect<Spend, UsageQueryError>
  /** Spend of the current UTC month at `now`, per caller that spent anything (rows without a caller left out). */
  readonly callerSpend: (now: Date) => Effect.Effect<ReadonlyMap<string, BigDecimal.BigDecimal>, UsageQueryError>
  /** Newest first, narrowed by `filter`. */
  readonly recent: (limit: number, before: string | null, filter?: CallFilter) => Effect.Effect<UsagePage, UsageQueryError>
  /** Rows waiting in the spool for the database to come back. */
  readonly spoolDepth: Effect.Effect<number>
}>() {
  /** The ledger on the `SqlClient`, group-committed, spooling under `DATA_DIR/spool`; closing it drains the queue. */
  static readonly layer = Layer.scoped(UsageRepo, make())
}

/** The service with the writer's defaults, or (tests) some of them replaced. */
export function make(options: Partial<LedgerWriter.LedgerWriterOptions> = {}) {
  return Effect.gen(function*() {
    const config = yield* Config
    const spool = yield* Spool.make(Path.resolve(config.database.dataDir, "spool"))
    const writer = yield* LedgerWriter.make(spool, { ...LedgerWriter.defaultOptions, ...options })
    const queries = yield* UsageQueries.make
    const failed = (cause: unknown) => new UsageQueryError({ cause })
    return UsageRepo.of({
      record: (row) => writer.record(row).pipe(Spans.ledgerCommit(row.id)),
      totals: (from, to, groupBy) => Effect.mapError(queries.totals(from, to, groupBy), failed),
      spend: (now) => Effect.mapError(queries.spend(now), failed),
      callerSpend: (now) => Effect.mapError(queries.callerSpend(now), failed),
      recent: (limit, before, filter) => Effect.mapError(queries.recent(limit, before, filter), failed),
      spoolDepth: writer.spoolDepth
    })
  }).pipe(Effect.annotateLogs("service", "UsageRepo"))
}

export class UsageQueryError extends Data.TaggedError("UsageQueryError")<{ readonly cause: unknown }> {}
