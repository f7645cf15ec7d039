import { SqlClient } from "@effect/sql"
import { BigDecimal, Clock, Context, Effect, Either, Layer, Metric, Option, Ref, Schema } from "effect"
import { Config } from "../Config.js"
import { BudgetExceeded } from "../domain/LlmError.js"
import { format } from "../domain/Money.js"
import { UsageQueryError, UsageRepo } from "../usage/UsageRepo.js"
import { AlertLedger } from "./AlertLedger.js"
import * as BudgetMetrics from "./BudgetMetrics.js"
import type { BudgetPeriod } from "./Period.js"
import { periodOf } from "./Period.js"

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

/** A hard limit as it stands now: what is spent, what is reserved in flight, and whether one more call fits. */
export interface CapState {
  readonly budget: BudgetPeriod
  /** `2026-11` or `2026-11-29`. */
  readonly period: string
  readonly limitUsd: BigDecimal.BigDecimal
  readonly spentUsd: BigDecimal.BigDecimal
  readonly reservedUsd: BigDecimal.BigDecimal
  /** Limit minus spent and reserved, never below 0. */
  readonly remainingUsd: BigDecimal.BigDecimal
  /** Whether a call costing the given worst case would be admitted now; none when that cost is unknown. */
  readonly roomForOneMoreCall: Option.Option<boolean>
  /** Calls this process refused under this limit in this period, and the worst case of the last one. */
  readonly refusals: number
  readonly lastRefusedUsd: Option.Option<string>
}

interface Refusals {
  readonly count: number
  readonly lastRequestedUsd: string
}

/** A replica that crashed between reserve and release must not hold budget forever. */
const staleAfter = "10 minutes"

const zero = BigDecimal.fromBigInt(0n)

const decodeReserved = Schema.decodeUnknown(Schema.Array(Schema.Struct({ total: Schema.BigDecimal })))

interface Limit {
  readonly budget: BudgetPeriod
  readonly limitUsd: BigDecimal.BigDecimal
}

const make = Effect.gen(function*() {
  const { budget } = yield* Config
  const sql = yield* SqlClient.SqlClient
  const usage = yield* UsageRepo
  const alerts = yield* AlertLedger
  const lock = yield* Effect.makeSemaphore(1)
  // Per `budget/period` (`monthly/2026-11`): refusals in this process, so the first one of a period is loud.
  const refusals = yield* Ref.make(new Map<string, Refusals>())

  const limitsOf = (entries: ReadonlyArray<readonly [BudgetPeriod, Option.Option<BigDecimal.BigDecimal>]>): ReadonlyArray<Limit> =>
    entries.flatMap(([b, limit]) => Option.isSome(limit) ? [{ budget: b, limitUsd: limit.value }] : [])
  const hard = limitsOf([["daily", budget.hardLimitDailyUsd], ["monthly", budget.hardLimitMonthlyUsd]])
  const watched = limitsOf([["daily", budget.alertDailyUsd], ["monthly", budget.alertMonthlyUsd]])

  const reserved = sql`SELECT coalesce(sum(amount_usd), 0)::text AS total FROM budget_reservations`.pipe(
    Effect.flatMap(decodeReserved),
    Effect.map((rows) => rows[0]?.total ?? zero)
  )

  /** Committed spend per budget plus what is reserved in flight. */
  const position = Effect.gen(function*() {
    const now = new Date(yield* Clock.currentTimeMillis)
    const spend = yield* usage.spend(now)
    return {
      now,
      spentOf: (b: BudgetPeriod) => b === "daily" ? spend.todayUsd : spend.monthUsd,
      reservedUsd: hard.length === 0 ? zero : yield* reserved
    }
  })

  /** The first hard limit that `amount` more would break; reaching a limit exactly already stops calls. */
  const breach = (p: Effect.Effect.Success<typeof position>, amount: BigDecimal.BigDecimal) =>
    Option.fromNullable(hard.find(({ budget: b, limitUsd }) => {
      const committed = BigDecimal.sum(p.spentOf(b), p.reservedUsd)
      return BigDecimal.greaterThanOrEqualTo(committed, limitUsd) ||
        BigDecimal.greaterThan(BigDecimal.sum(committed, amount), limitUsd)
    })).pipe(Option.map(({ budget: b, limitUsd }) =>
      new BudgetExceeded({
        budget: b,
        limitUsd: format(limitUsd),
        committedUsd: format(BigDecimal.sum(p.spentOf(b), p.reservedUsd)),
        requestedUsd: format(amount)
      })
    ))

  // Without the ledger nothing proves a call fits, so the cap holds by refusing (fail closed).
  const unverifiable = (amount: BigDecimal.BigDecimal) => (error: unknown) => {
    const { budget: b, limitUsd } = hard[0]!
    return Effect.logError("Budget check failed; refusing the call").pipe(
      Effect.annotateLogs({ error: String(error) }),
      Effect.zipRight(Effect.fail(new BudgetExceeded({ budget: b, limitUsd: format(limitUsd), committedUsd: "unknown", requestedUsd: format(amount) })))
    )
  }

  /**
   * The first refusal of a period is a WARN (the cap now stops calls until the period ends or the
   * limit is raised); the ones after it are DEBUG, counted by `budget_exceeded_total`.
   */
  const logRefusal = (e: BudgetExceeded) =>
    Effect.gen(function*() {
      yield* Metric.increment(BudgetMetrics.exceeded)
      const key = `${e.budget}/${periodOf(e.budget, new Date(yield* Clock.currentTimeMillis))}`
      const seen = yield* Ref.modify(refusals, (map) => {
        const before = map.get(key)
        const next = new Map(map).set(key, { count: (before?.count ?? 0) + 1, lastRequestedUsd: e.requestedUsd })
        return [before !== undefined, next] as const
      })
      const message = `Calls refused by the hard ${e.budget} budget limit: ${e.committedUsd} of ${e.limitUsd} USD spent or reserved, ` +
        `and the next call may cost up to ${e.requestedUsd} USD`
      yield* (seen ? Effect.logDebug("Call refused by the hard budget limit") : Effect.logWarning(message)).pipe(
        Effect.annotateLogs({ budget: e.budget, limitUsd: e.limitUsd, committedUsd: e.committedUsd, requestedUsd: e.requestedUsd })
      )
    })

  const decide = (amount: BigDecimal.BigDecimal) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext('budget_reservations'))`
      yield* sql`DELETE FROM budget_reservations WHERE created_at < now() - ${staleAfter}::interval`
      const exceeded = breach(yield* position, amount)
      if (Option.isSome(exceeded)) return Either.left(exceeded.value)
      const reservation: Reservation = { id: crypto.randomUUID(), amountUsd: amount }
      yield* sql`INSERT INTO budget_reservations (id, amount_usd) VALUES (${reservation.id}, ${format(amount)}::numeric)`
      return Either.right(reservation)
    }))

  const reserve = (amount: BigDecimal.BigDecimal): Effect.Effect<Reservation, BudgetExceeded> =>
    hard.length === 0
      ? Effect.sync(() => ({ id: crypto.randomUUID(), amountUsd: amount }))
      : lock.withPermits(1)(decide(amount)).pipe(
        Effect.catchAll(unverifiable(amount)),
        Effect.flatten,
        Effect.tapError(logRefusal)
      )

  const release = (reservation: Reservation): Effect.Effect<void> =>
    hard.length === 0
      ? Effect.void
      : sql`DELETE FROM budget_reservations WHERE id = ${reservation.id}`.pipe(
        // Left behind, it expires after `staleAfter`; until then it only makes the cap stricter.
        Effect.catchAll((error) => Effect.logWarning("Could not release a budget reservation", error)),
        Effect.asVoid
      )

  const exhausted: Effect.Effect<Option.Option<BudgetExceeded>> =
    hard.length === 0
      ? Effect.succeedNone
      : position.pipe(
        Effect.map((p) => breach({ ...p, reservedUsd: zero }, zero)),
        // Unknown here is not "exhausted": `reserve` decides, and refuses while it cannot check.
        Effect.catchAll((error) =>
          Effect.logWarning("Could not read the spend for the budget check", String(error)).pipe(Effect.as(Option.none()))
        )
      )

  const capState = (worstCaseUsd: Option.Option<BigDecimal.BigDecimal>): Effect.Effect<ReadonlyArray<CapState>, UsageQueryError> =>
    hard.length === 0
      ? Effect.succeed([])
      : Effect.gen(function*() {
        const p = yield* position
        const refused = yield* Ref.get(refusals)
        return hard.map(({ budget: b, limitUsd }): CapState => {
          const period = periodOf(b, p.now)
          const committed = BigDecimal.sum(p.spentOf(b), p.reservedUsd)
          const remaining = BigDecimal.max(zero, BigDecimal.subtract(limitUsd, committed))
          const r = refused.get(`${b}/${period}`)
          return {
            budget: b,
            period,
            limitUsd,
            spentUsd: p.spentOf(b),
            reservedUsd: p.reservedUsd,
            remainingUsd: BigDecimal.normalize(remaining),
            roomForOneMoreCall: Option.map(worstCaseUsd, (worst) =>
              BigDecimal.lessThan(committed, limitUsd) && BigDecimal.lessThanOrEqualTo(BigDecimal.sum(committed, worst), limitUsd)),
            refusals: r?.count ?? 0,
            lastRefusedUsd: Option.fromNullable(r?.lastRequestedUsd)
          }
        })
      }).pipe(Effect.catchTags({
        SqlError: (e) => Effect.fail(new UsageQueryError({ cause: e })),
        ParseError: (e) => Effect.fail(new UsageQueryError({ cause: e }))
      }))

  const status: Effect.Effect<ReadonlyArray<BudgetStatus>, UsageQueryError> =
    hard.length === 0 && watched.length === 0
      ? Effect.succeed([])
      : Effect.gen(function*() {
        const p = yield* position
        const alerted = (b: BudgetPeriod) => alerts.levelsAlerted(b, periodOf(b, p.now))
        const rows = (kind: "alert" | "hard", limits: ReadonlyArray<Limit>) =>
          Effect.forEach(limits, ({ budget: b, limitUsd }) =>
            Effect.map(kind === "alert" ? alerted(b) : Effect.succeed([]), (levelsAlerted): BudgetStatus => ({
              budget: b,
              kind,
              limitUsd,
              spentUsd: p.spentOf(b),
              reservedUsd: p.reservedUsd,
              levelsAlerted
            })))
        return [...yield* rows("alert", watched), ...yield* rows("hard", hard)]
      }).pipe(Effect.catchTags({
        AlertLedgerError: (e) => Effect.fail(new UsageQueryError({ cause: e.cause })),
        SqlError: (e) => Effect.fail(new UsageQueryError({ cause: e })),
        ParseError: (e) => Effect.fail(new UsageQueryError({ cause: e }))
      }))

  if (hard.length > 0) {
    yield* Effect.logInfo("Hard budget limit active").pipe(
      Effect.annotateLogs(Object.fromEntries(hard.map((h) => [h.budget, format(h.limitUsd)])))
    )
  }
  return { reserve, release, exhausted, status, capState }
})

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
  /** Every configured budget, alert and hard, in the current UTC day and month. */
  readonly status: Effect.Effect<ReadonlyArray<BudgetStatus>, UsageQueryError>
  /** Each hard limit's state now, and whether a call of `worstCaseUsd` would fit (readiness shows it). */
  readonly capState: (worstCaseUsd: Option.Option<BigDecimal.BigDecimal>) => Effect.Effect<ReadonlyArray<CapState>, UsageQueryError>
}>() {
  /**
   * Reservations live in `budget_reservations`, decided one at a time under a transaction-scoped
   * advisory lock, so every replica on the database shares one cap. With no hard limit set,
   * `reserve` and `release` touch nothing.
   */
  static readonly layer: Layer.Layer<BudgetGuard, never, Config | SqlClient.SqlClient | UsageRepo> = Layer
    .effect(BudgetGuard, make).pipe(Layer.provide(AlertLedger.layer))
}
