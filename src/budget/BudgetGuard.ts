import * as SqlClient from "@effect/sql/SqlClient"
import { BigDecimal, Clock, Context, Effect, Either, Layer, Metric, Option, Ref, Schema } from "effect"
import { Config } from "../Config.js"
import { BudgetExceeded } from "../domain/LlmError.js"
import { format } from "../domain/Money.js"
import { UsageQueryError, UsageRepo } from "../usage/UsageRepo.js"
import { AlertLedger } from "./AlertLedger.js"
import * as BudgetMetrics from "./BudgetMetrics.js"
import type { BudgetPeriod } from "../domain/Period.js"
import { periodOf } from "../domain/Period.js"

export interface Reservation {
  readonly id: string
  readonly amountUsd: BigDecimal.BigDecimal
  /** Set when the caller has its own cap, so its in-flight calls count against it. */
  readonly caller?: string
}

export interface BudgetStatus {
  readonly budget: "daily" | "monthly"
  /** The caller whose own budget this is (`CALLER_BUDGETS_MONTHLY_USD`); absent for the global budgets. */
  readonly caller?: string
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
  const callerLimits = budget.callerMonthlyUsd
  const anyHard = hard.length > 0 || callerLimits.size > 0
  const callerCapOf = (caller: string | null) => caller === null ? undefined : callerLimits.get(caller)
  const capped = (caller: string | null) => hard.length > 0 || callerCapOf(caller) !== undefined

  const reservedWhere = (caller: string | null) =>
    (caller === null
      ? sql`SELECT coalesce(sum(amount_usd), 0)::text AS total FROM budget_reservations`
      : sql`SELECT coalesce(sum(amount_usd), 0)::text AS total FROM budget_reservations WHERE caller = ${caller}`).pipe(
        Effect.flatMap(decodeReserved),
        Effect.map((rows) => rows[0]?.total ?? zero)
      )

  /** Committed spend per budget plus what is reserved in flight; the caller's own too when it has a cap. */
  const position = (caller: string | null) => Effect.gen(function*() {
    const now = new Date(yield* Clock.currentTimeMillis)
    const spend = yield* usage.spend(now)
    const own = callerCapOf(caller) === undefined ? undefined : {
      spentUsd: (yield* usage.callerSpend(now)).get(caller!) ?? zero,
      reservedUsd: yield* reservedWhere(caller)
    }
    return {
      now,
      spentOf: (b: BudgetPeriod) => b === "daily" ? spend.todayUsd : spend.monthUsd,
      reservedUsd: hard.length === 0 ? zero : yield* reservedWhere(null),
      own
    }
  })

  const over = (committed: BigDecimal.BigDecimal, amount: BigDecimal.BigDecimal, limitUsd: BigDecimal.BigDecimal) =>
    BigDecimal.greaterThanOrEqualTo(committed, limitUsd) || BigDecimal.greaterThan(BigDecimal.sum(committed, amount), limitUsd)

  /** The first hard limit, global or the caller's, that `amount` more would break; reaching a limit exactly already stops calls. */
  const breach = (p: Effect.Effect.Success<ReturnType<typeof position>>, amount: BigDecimal.BigDecimal, caller: string | null) => {
    const global = Option.fromNullable(hard.find(({ budget: b, limitUsd }) => over(BigDecimal.sum(p.spentOf(b), p.reservedUsd), amount, limitUsd)))
      .pipe(Option.map(({ budget: b, limitUsd }) =>
        new BudgetExceeded({
          budget: b,
          limitUsd: format(limitUsd),
          committedUsd: format(BigDecimal.sum(p.spentOf(b), p.reservedUsd)),
          requestedUsd: format(amount)
        })
      ))
    const limitUsd = callerCapOf(caller)
    return Option.orElse(global, () => {
      if (limitUsd === undefined || p.own === undefined) return Option.none()
      const committed = BigDecimal.sum(p.own.spentUsd, p.own.reservedUsd)
      return over(committed, amount, limitUsd)
        ? Option.some(new BudgetExceeded({
          budget: "monthly",
          limitUsd: format(limitUsd),
          committedUsd: format(committed),
          requestedUsd: format(amount),
          caller: caller!
        }))
        : Option.none()
    })
  }

  // Without the ledger nothing proves a call fits, so the cap holds by refusing (fail closed).
  const unverifiable = (amount: BigDecimal.BigDecimal, caller: string | null) => (error: unknown) => {
    const own = callerCapOf(caller)
    const { budget: b, limitUsd } = hard[0] ?? { budget: "monthly" as const, limitUsd: own! }
    return Effect.logError("Budget check failed; refusing the call").pipe(
      Effect.annotateLogs({ error: String(error) }),
      Effect.zipRight(Effect.fail(new BudgetExceeded({
        budget: b,
        limitUsd: format(limitUsd),
        committedUsd: "unknown",
        requestedUsd: format(amount),
        ...(hard.length === 0 && caller !== null ? { caller } : {})
      })))
    )
  }

  /**
   * The first refusal of a period is a WARN (the cap now stops calls until the period ends or the
   * limit is raised); the ones after it are DEBUG, counted by `budget_exceeded_total`.
   */
  const logRefusal = (e: BudgetExceeded) =>
    Effect.gen(function*() {
      yield* Metric.increment(BudgetMetrics.exceeded)
      const key = `${e.caller === undefined ? "" : `${e.caller}:`}${e.budget}/${periodOf(e.budget, new Date(yield* Clock.currentTimeMillis))}`
      const seen = yield* Ref.modify(refusals, (map) => {
        const before = map.get(key)
        const next = new Map(map).set(key, { count: (before?.count ?? 0) + 1, lastRequestedUsd: e.requestedUsd })
        return [before !== undefined, next] as const
      })
      const limit = e.caller === undefined ? `the hard ${e.budget} budget limit` : `the monthly budget of caller ${e.caller}`
      const message = `Calls refused by ${limit}: ${e.committedUsd} of ${e.limitUsd} USD spent or reserved, ` +
        `and the next call may cost up to ${e.requestedUsd} USD`
      yield* (seen ? Effect.logDebug(`Call refused by ${limit}`) : Effect.logWarning(message)).pipe(
        Effect.annotateLogs({
          budget: e.budget,
          limitUsd: e.limitUsd,
          committedUsd: e.committedUsd,
          requestedUsd: e.requestedUsd,
          ...(e.caller === undefined ? {} : { caller: e.caller })
        })
      )
    })

  const decide = (amount: BigDecimal.BigDecimal, caller: string | null) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext('budget_reservations'))`
      yield* sql`DELETE FROM budget_reservations WHERE created_at < now() - ${staleAfter}::interval`
      const exceeded = breach(yield* position(caller), amount, caller)
      if (Option.isSome(exceeded)) return Either.left(exceeded.value)
      const reservation: Reservation = { id: crypto.randomUUID(), amountUsd: amount, ...(caller === null ? {} : { caller }) }
      yield* sql`INSERT INTO budget_reservations (id, amount_usd, caller) VALUES (${reservation.id}, ${format(amount)}::numeric, ${caller})`
      return Either.right(reservation)
    }))

  const reserve = (amount: BigDecimal.BigDecimal, caller: string | null = null): Effect.Effect<Reservation, BudgetExceeded> =>
    !capped(caller)
      ? Effect.sync(() => ({ id: crypto.randomUUID(), amountUsd: amount }))
      : lock.withPermits(1)(decide(amount, caller)).pipe(
        Effect.catchAll(unverifiable(amount, caller)),
        Effect.flatten,
        Effect.tapError(logRefusal)
      )

  const release = (reservation: Reservation): Effect.Effect<void> =>
    !anyHard
      ? Effect.void
      : sql`DELETE FROM budget_reservations WHERE id = ${reservation.id}`.pipe(
        // Left behind, it expires after `staleAfter`; until then it only makes the cap stricter.
        Effect.catchAll((error) => Effect.logWarning("Could not release a budget reservation", error)),
        Effect.asVoid
      )

  const exhausted: Effect.Effect<Option.Option<BudgetExceeded>> =
    hard.length === 0
      ? Effect.succeedNone
      : position(null).pipe(
        Effect.map((p) => breach({ ...p, reservedUsd: zero }, zero, null)),
        // Unknown here is not "exhausted": `reserve` decides, and refuses while it cannot check.
        Effect.catchAll((error) =>
          Effect.logWarning("Could not read the spend for the budget check", String(error)).pipe(Effect.as(Option.none()))
        )
      )

  const capState = (worstCaseUsd: Option.Option<BigDecimal.BigDecimal>): Effect.Effect<ReadonlyArray<CapState>, UsageQueryError> =>
    hard.length === 0
      ? Effect.succeed([])
      : Effect.gen(function*() {
        const p = yield* position(null)
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
    !anyHard && watched.length === 0
      ? Effect.succeed([])
      : Effect.gen(function*() {
        const p = yield* position(null)
        const alerted = (b: BudgetPeriod, caller?: string) => alerts.levelsAlerted(b, periodOf(b, p.now), caller)
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
        const callerSpend = callerLimits.size === 0 ? new Map<string, BigDecimal.BigDecimal>() : yield* usage.callerSpend(p.now)
        const callerRows = yield* Effect.forEach([...callerLimits], ([caller, limitUsd]) =>
          Effect.map(alerted("monthly", caller), (levelsAlerted): BudgetStatus => ({
            budget: "monthly",
            caller,
            kind: "hard",
            limitUsd,
            spentUsd: callerSpend.get(caller) ?? zero,
            reservedUsd: zero,
            levelsAlerted
          })))
        return [...yield* rows("alert", watched), ...yield* rows("hard", hard), ...callerRows]
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
  if (callerLimits.size > 0) {
    yield* Effect.logInfo("Caller budgets active").pipe(
      Effect.annotateLogs("callers", [...callerLimits].map(([c, l]) => `${c}=${format(l)}`).join(","))
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
  /** Against the global cap and, when `caller` has one, the caller's own monthly cap. */
  readonly reserve: (worstCaseUsd: BigDecimal.BigDecimal, caller?: string | null) => Effect.Effect<Reservation, BudgetExceeded>
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
  static readonly layer: Layer.Layer<BudgetGuard, never, Config | SqlClient.SqlClient | UsageRepo | AlertLedger> = Layer
    .effect(BudgetGuard, make)
}

/** The budgets' state now, for the reports (`/v1/usage`, the dashboard). */
export const budgetStatus = Effect.flatMap(BudgetGuard, (guard) => guard.status)
