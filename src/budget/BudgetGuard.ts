import type { BigDecimal, Effect, Option } from "effect"
import { Context } from "effect"
import type { BudgetExceeded } from "../domain/LlmError.js"

export interface Reservation {
  readonly id: string
  readonly amountUsd: BigDecimal.BigDecimal
}

export interface BudgetStatus {
  readonly budget: "daily" | "monthly"
  readonly kind: "alert" | "hard"
  readonly limitUsd: BigDecimal.BigDecimal
  readonly spentUsd: BigDecimal.BigDecimal
  readonly reservedUsd: BigDecimal.BigDecimal
  readonly levelsAlerted: ReadonlyArray<string>
}

/**
 * The hard cap (`COST_HARD_LIMIT_*_USD`). Before each upstream call its worst-case cost is reserved
 * against what remains; once the real cost is in the ledger the reservation is released, so
 * concurrent calls cannot overshoot the cap by more than one call's estimation error.
 */
export class BudgetGuard extends Context.Tag("BudgetGuard")<BudgetGuard, {
  readonly reserve: (worstCaseUsd: BigDecimal.BigDecimal) => Effect.Effect<Reservation, BudgetExceeded>
  readonly release: (reservation: Reservation) => Effect.Effect<void>
  /** Whether a call could be made now (the readiness probe and the summarizer's pre-check). */
  readonly exhausted: Effect.Effect<Option.Option<BudgetExceeded>>
  readonly status: Effect.Effect<ReadonlyArray<BudgetStatus>>
}>() {}
