import type { BigDecimal, Effect } from "effect"
import { Context, Data } from "effect"
import type { UsageRecord } from "../domain/UsageRecord.js"

export type GroupBy = "day" | "month" | "model"

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
  /** `YYYY-MM-DD`, `YYYY-MM` or the model id, per `groupBy`. */
  readonly key: string
}

export interface Spend {
  readonly todayUsd: BigDecimal.BigDecimal
  readonly monthUsd: BigDecimal.BigDecimal
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
  readonly recent: (limit: number, before: string | null) => Effect.Effect<UsagePage, UsageQueryError>
  /** Rows waiting in the spool for the database to come back. */
  readonly spoolDepth: Effect.Effect<number>
}>() {}

export class UsageQueryError extends Data.TaggedError("UsageQueryError")<{ readonly cause: unknown }> {}
