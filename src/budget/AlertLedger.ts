import * as SqlClient from "@effect/sql/SqlClient"
import type { BigDecimal } from "effect"
import { Array as Arr, Context, Data, Effect, Layer, Option, Schema } from "effect"
import { format as exact } from "../domain/Money.js"
import type { BudgetPeriod } from "../domain/Period.js"

export class AlertLedgerError extends Data.TaggedError("AlertLedgerError")<{ readonly cause: unknown }> {}

export interface AlertKey {
  readonly budget: BudgetPeriod
  readonly period: string
  readonly level: BigDecimal.BigDecimal
  /** The caller whose own budget this is; absent for the global budgets. */
  readonly caller?: string
}

/** Stored as '' for the global budgets, so it can be part of the key. */
const callerColumn = (key: { readonly caller?: string }) => key.caller ?? ""

const withCaller = <A extends object>(a: A, caller: string): A & { readonly caller?: string } =>
  caller === "" ? a : { ...a, caller }

export interface AlertClaim extends AlertKey {
  readonly limitUsd: BigDecimal.BigDecimal
  /** Spend when the level was crossed. */
  readonly spentUsd: BigDecimal.BigDecimal
  /** Send attempts so far, this one included. */
  readonly attempts: number
  /** Channels that already accepted this alert. */
  readonly delivered: ReadonlyArray<string>
}

const ClaimRow = Schema.Struct({
  budget: Schema.Literal("daily", "monthly"),
  caller: Schema.String,
  period: Schema.String,
  level: Schema.BigDecimal,
  limit_usd: Schema.BigDecimal,
  spent_usd: Schema.BigDecimal,
  attempts: Schema.Number,
  delivered: Schema.String
})
const decodeClaims = Schema.decodeUnknown(Schema.Array(ClaimRow))
const decodeKeys = Schema.decodeUnknown(Schema.Array(Schema.Struct({
  budget: Schema.Literal("daily", "monthly"),
  caller: Schema.String,
  period: Schema.String,
  level: Schema.BigDecimal
})))
const decodeLevels = Schema.decodeUnknown(Schema.Array(Schema.Struct({ level: Schema.BigDecimal })))

/**
 * How long a monitor holds an alert while sending it: well beyond any channel's own timeout, so a
 * live sender never loses it; one that crashed mid-send frees it after this much.
 */
const lease = "5 minutes"

/**
 * The `cost_alerts` table: the claim that makes each (budget, period, level) alert go out once,
 * across restarts and replicas, and the bookkeeping of its sending.
 */
export class AlertLedger extends Context.Tag("AlertLedger")<AlertLedger, {
  /** Records that a level was crossed; a no-op when it already was (by this or another monitor). */
  readonly claim: (claim: AlertKey & { readonly limitUsd: BigDecimal.BigDecimal; readonly spentUsd: BigDecimal.BigDecimal }) => Effect.Effect<void, AlertLedgerError>
  /** Claims still unsent (from any period, any earlier run) that no monitor is sending: daily first, then by period and level. */
  readonly due: Effect.Effect<ReadonlyArray<AlertKey>, AlertLedgerError>
  /**
   * Takes the lease on one due claim, atomically: of two monitors asking at once, one gets it and
   * the other `None`. Taken just before sending, so a long queue of alerts cannot outlive its lease.
   */
  readonly lease: (key: AlertKey) => Effect.Effect<Option.Option<AlertClaim>, AlertLedgerError>
  /** Every channel accepted it: done for good. */
  readonly markSent: (key: AlertKey, delivered: ReadonlyArray<string>) => Effect.Effect<void, AlertLedgerError>
  /** Some channel failed: free the lease so a later run retries, remembering who already has it. */
  readonly markFailed: (key: AlertKey, delivered: ReadonlyArray<string>, error: string) => Effect.Effect<void, AlertLedgerError>
  /** Levels sent for a budget in a period, lowest first, as decimal strings (`0.5`, `0.8`, `1`). */
  readonly levelsAlerted: (budget: BudgetPeriod, period: string, caller?: string) => Effect.Effect<ReadonlyArray<string>, AlertLedgerError>
}>() {
  static readonly layer: Layer.Layer<AlertLedger, never, SqlClient.SqlClient> = Layer.effect(
    AlertLedger,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const fail = (cause: unknown) => new AlertLedgerError({ cause })
      const where = (key: AlertKey) =>
        sql`budget = ${key.budget} AND period = ${key.period} AND level = ${exact(key.level)}::numeric AND caller = ${callerColumn(key)}`
      return {
        claim: (c) =>
          sql`
            INSERT INTO cost_alerts (budget, period, level, limit_usd, spent_usd, caller)
            VALUES (${c.budget}, ${c.period}, ${exact(c.level)}::numeric, ${exact(c.limitUsd)}::numeric, ${exact(c.spentUsd)}::numeric, ${callerColumn(c)})
            ON CONFLICT (budget, period, level, caller) DO NOTHING`.pipe(Effect.asVoid, Effect.mapError(fail)),
        due: sql`
            SELECT budget, period, level::text AS level, caller FROM cost_alerts
            WHERE sent_at IS NULL AND (locked_until IS NULL OR locked_until < now())
            ORDER BY budget, period, caller, level`.pipe(
            Effect.flatMap(decodeKeys),
            Effect.map((rows) => rows.map(({ caller, ...key }) => withCaller(key, caller))),
            Effect.mapError(fail)
          ),
        lease: (key) =>
          sql`
            UPDATE cost_alerts
            SET locked_until = now() + ${lease}::interval, attempts = attempts + 1
            WHERE ${where(key)} AND sent_at IS NULL AND (locked_until IS NULL OR locked_until < now())
            RETURNING budget, caller, period, level::text AS level, limit_usd::text AS limit_usd,
                      spent_usd::text AS spent_usd, attempts, delivered`.pipe(
            Effect.flatMap(decodeClaims),
            Effect.map((rows) =>
              Option.map(Arr.head(rows), (r): AlertClaim =>
                withCaller({
                  budget: r.budget,
                  period: r.period,
                  level: r.level,
                  limitUsd: r.limit_usd,
                  spentUsd: r.spent_usd,
                  attempts: r.attempts,
                  delivered: r.delivered === "" ? [] : r.delivered.split(",")
                }, r.caller))
            ),
            Effect.mapError(fail)
          ),
        markSent: (key, delivered) =>
          sql`
            UPDATE cost_alerts
            SET sent_at = now(), locked_until = NULL, last_error = NULL, delivered = ${delivered.join(",")}
            WHERE ${where(key)}`.pipe(Effect.asVoid, Effect.mapError(fail)),
        markFailed: (key, delivered, error) =>
          sql`
            UPDATE cost_alerts
            SET locked_until = NULL, last_error = ${error.slice(0, 2000)}, delivered = ${delivered.join(",")}
            WHERE ${where(key)} AND sent_at IS NULL`.pipe(Effect.asVoid, Effect.mapError(fail)),
        levelsAlerted: (budget, period, caller) =>
          sql`
            SELECT level::text AS level FROM cost_alerts
            WHERE budget = ${budget} AND period = ${period} AND caller = ${callerColumn({ ...(caller === undefined ? {} : { caller }) })} AND sent_at IS NOT NULL
            ORDER BY level`.pipe(
            Effect.flatMap(decodeLevels),
            Effect.map((rows) => rows.map((r) => exact(r.level))),
            Effect.mapError(fail)
          )
      }
    })
  )
}
