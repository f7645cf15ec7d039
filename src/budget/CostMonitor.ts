import type * as SqlClient from "@effect/sql/SqlClient"
import { Array as Arr, BigDecimal, Clock, Context, Duration, Effect, Layer, Metric, Option, Order, Schedule } from "effect"
import { Config } from "../Config.js"
import { format as exact } from "../domain/Money.js"
import type { UsageGroup, UsageQueryError } from "../usage/UsageRepo.js"
import { UsageRepo } from "../usage/UsageRepo.js"
import type { AlertClaim, AlertLedgerError } from "./AlertLedger.js"
import { AlertLedger } from "./AlertLedger.js"
import type { CostAlert } from "./AlertMessage.js"
import { subject } from "./AlertMessage.js"
import { AlertSender } from "./AlertSender.js"
import * as BudgetMetrics from "./BudgetMetrics.js"
import type { BudgetPeriod } from "../domain/Period.js"
import { daysOf, periodOf } from "../domain/Period.js"

export type CostMonitorError = UsageQueryError | AlertLedgerError

/** What one run did, for tests and the debug log. */
export interface MonitorRun {
  readonly sent: number
  readonly failed: number
}

const topModelCount = 5

const byCostDescending = Order.reverse(Order.mapInput(BigDecimal.Order, (g: UsageGroup) => g.costUsd))

const make = Effect.gen(function*() {
  const { budget } = yield* Config
  const usage = yield* UsageRepo
  const ledger = yield* AlertLedger
  const sender = yield* AlertSender
  const budgets = [
    { budget: "daily" as const, limit: budget.alertDailyUsd },
    { budget: "monthly" as const, limit: budget.alertMonthlyUsd }
  ].flatMap((b) => Option.isSome(b.limit) ? [{ budget: b.budget, limitUsd: b.limit.value }] : [])
  const levels = Arr.sort(Arr.dedupeWith(budget.alertLevels, BigDecimal.equals), BigDecimal.Order)
  const callerBudgets = [...budget.callerMonthlyUsd]

  // A caller's alert speaks of its own spend and calls; the ledger has no per-caller model breakdown.
  const callerAlertFor = (claim: AlertClaim, caller: string) =>
    Effect.gen(function*() {
      const { from, to } = daysOf(claim.budget, claim.period)
      const { groups } = yield* usage.totals(from, to, "caller")
      const own = groups.find((g) => g.key === caller)
      return {
        budget: claim.budget,
        caller,
        period: claim.period,
        level: claim.level,
        limitUsd: claim.limitUsd,
        spentUsd: BigDecimal.max(own?.costUsd ?? BigDecimal.fromBigInt(0n), claim.spentUsd),
        calls: own?.calls ?? 0,
        topModels: []
      } satisfies CostAlert
    })

  const alertFor = (claim: AlertClaim) =>
    claim.caller !== undefined ? callerAlertFor(claim, claim.caller) : Effect.gen(function*() {
      const { from, to } = daysOf(claim.budget, claim.period)
      const { groups, total } = yield* usage.totals(from, to, "model")
      const topModels = Arr.sort(groups, byCostDescending)
        .slice(0, topModelCount)
        .map((g) => ({ model: g.key, costUsd: g.costUsd, calls: g.calls }))
      return {
        budget: claim.budget,
        period: claim.period,
        level: claim.level,
        limitUsd: claim.limitUsd,
        spentUsd: BigDecimal.max(total.costUsd, claim.spentUsd),
        calls: total.calls,
        topModels
      } satisfies CostAlert
    })

  const failed = (claim: AlertClaim, delivered: ReadonlyArray<string>, message: string) =>
    Effect.logError("Cost alert not delivered yet; retried on the next run").pipe(
      Effect.annotateLogs({ event: "cost_alert_failed", attempts: claim.attempts, error: message }),
      Effect.zipRight(ledger.markFailed(claim, delivered, message)),
      Effect.as(false)
    )

  const deliver = (claim: AlertClaim) =>
    Effect.gen(function*() {
      const alert = yield* alertFor(claim)
      const delivery = yield* sender.send(alert, claim.delivered)
      const delivered = Arr.union(claim.delivered, delivery.delivered)
      if (delivery.failures.length > 0) {
        yield* Metric.incrementBy(BudgetMetrics.alertSendFailures, delivery.failures.length)
        return yield* failed(claim, delivered, delivery.failures.map((f) => `${f.channel}: ${f.error.message}`).join("; "))
      }
      yield* ledger.markSent(claim, delivered)
      yield* Metric.increment(BudgetMetrics.alertsSent).pipe(
        Effect.tagMetrics({ budget: claim.budget, level: exact(claim.level) })
      )
      yield* Effect.logWarning(subject(alert)).pipe(Effect.annotateLogs({
        event: "cost_alert",
        spentUsd: exact(alert.spentUsd),
        limitUsd: exact(alert.limitUsd),
        calls: alert.calls,
        channels: ["log", ...delivered].join(",")
      }))
      return true
    }).pipe(
      // Reading the ledger failed before anything was sent: free the lease for the next run.
      Effect.catchTag("UsageQueryError", (error) => failed(claim, claim.delivered, `ledger unavailable: ${String(error.cause)}`)),
      Effect.annotateLogs({ budget: claim.budget, period: claim.period, level: exact(claim.level), ...(claim.caller === undefined ? {} : { caller: claim.caller }) })
    )

  const claimCrossed = (now: Date, spentOf: (b: BudgetPeriod) => BigDecimal.BigDecimal) =>
    Effect.forEach(budgets, ({ budget, limitUsd }) =>
      Effect.forEach(
        levels.filter((level) => BigDecimal.greaterThanOrEqualTo(spentOf(budget), BigDecimal.multiply(limitUsd, level))),
        (level) => ledger.claim({ budget, period: periodOf(budget, now), level, limitUsd, spentUsd: spentOf(budget) }),
        { discard: true }
      ), { discard: true })

  /** Each caller with its own budget alerts at the same levels, once per month. */
  const claimCallersCrossed = (now: Date) =>
    Effect.flatMap(usage.callerSpend(now), (spent) =>
      Effect.forEach(callerBudgets, ([caller, limitUsd]) => {
        const spentUsd = spent.get(caller) ?? BigDecimal.fromBigInt(0n)
        return Effect.forEach(
          levels.filter((level) => BigDecimal.greaterThanOrEqualTo(spentUsd, BigDecimal.multiply(limitUsd, level))),
          (level) => ledger.claim({ budget: "monthly", caller, period: periodOf("monthly", now), level, limitUsd, spentUsd }),
          { discard: true }
        )
      }, { discard: true }))

  const checkOnce = Effect.gen(function*() {
    const now = new Date(yield* Clock.currentTimeMillis)
    const spend = yield* usage.spend(now)
    yield* Metric.set(BudgetMetrics.spend, BigDecimal.unsafeToNumber(spend.todayUsd)).pipe(Effect.tagMetrics("period", "daily"))
    yield* Metric.set(BudgetMetrics.spend, BigDecimal.unsafeToNumber(spend.monthUsd)).pipe(Effect.tagMetrics("period", "monthly"))
    yield* claimCrossed(now, (b) => b === "daily" ? spend.todayUsd : spend.monthUsd)
    if (callerBudgets.length > 0) yield* claimCallersCrossed(now)
    const outcomes = yield* Effect.forEach(yield* ledger.due, (key) =>
      Effect.flatMap(ledger.lease(key), Option.match({
        onNone: () => Effect.succeed(Option.none<boolean>()),
        onSome: (claim) => Effect.asSome(deliver(claim))
      })))
    const attempted = Arr.getSomes(outcomes)
    return { sent: attempted.filter((ok) => ok).length, failed: attempted.filter((ok) => !ok).length }
  })
  // One run at a time in this process; across processes the claims and leases keep sends single.
  const single = yield* Effect.makeSemaphore(1)
  const check = single.withPermits(1)(checkOnce)

  if (budgets.length === 0 && callerBudgets.length === 0) {
    yield* Effect.logInfo("No cost alert budget set (COST_ALERT_DAILY_USD, COST_ALERT_MONTHLY_USD): the cost monitor is idle")
  } else {
    yield* Effect.logInfo("Cost monitor started").pipe(Effect.annotateLogs({
      budgets: [...budgets.map((b) => `${b.budget}=${exact(b.limitUsd)}`), ...callerBudgets.map(([c, l]) => `caller ${c} monthly=${exact(l)}`)].join(","),
      levels: levels.map(exact).join(","),
      intervalMs: budget.alertIntervalMs
    }))
    // A failed run (database down, ...) is logged; the schedule goes on and the fiber never dies.
    const run = check.pipe(
      Effect.tap((r) => Effect.logDebug("Cost monitor run").pipe(Effect.annotateLogs({ sent: r.sent, failed: r.failed }))),
      Effect.catchAllCause((cause) =>
        Metric.increment(BudgetMetrics.monitorRunFailures).pipe(
          Effect.zipRight(Effect.logError("Cost monitor run failed; next run on schedule", cause))
        )
      )
    )
    yield* run.pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(budget.alertIntervalMs))),
      Effect.forkScoped
    )
  }
  return { check }
}).pipe(Effect.annotateLogs("service", "CostMonitor"))

/**
 * Watches the daily and monthly spend against `COST_ALERT_DAILY_USD` / `COST_ALERT_MONTHLY_USD`
 * at each of `COST_ALERT_LEVELS`. A crossed level is first claimed in `cost_alerts` (a unique
 * row), then sent; unsent claims, this run's and earlier ones', are leased atomically before
 * sending, so restarts and replicas send each alert once and a failed send is retried next run.
 */
export class CostMonitor extends Context.Tag("CostMonitor")<CostMonitor, {
  /** One run; the layer's fiber repeats it every `COST_ALERT_INTERVAL_MS`. */
  readonly check: Effect.Effect<MonitorRun, CostMonitorError>
}>() {
  /** The monitor and its fiber, which lives as long as the layer's scope (the server's). */
  static readonly layer: Layer.Layer<CostMonitor, never, Config | UsageRepo | AlertSender | AlertLedger | SqlClient.SqlClient> =
    Layer.scoped(CostMonitor, make)
}
