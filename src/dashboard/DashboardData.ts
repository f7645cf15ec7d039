import { Array as Arr, BigDecimal, Clock, Effect, Metric, MetricState, Option } from "effect"
import type { BudgetStatus } from "../budget/BudgetGuard.js"
import { BudgetGuard, budgetStatus } from "../budget/BudgetGuard.js"
import { periodOf } from "../domain/Period.js"
import { Config } from "../Config.js"
import { ServiceUnavailable } from "../domain/ApiErrors.js"
import type { UsageRecord } from "../domain/UsageRecord.js"
import type { CircuitState } from "../llm/CircuitBreaker.js"
import { CircuitBreaker } from "../llm/CircuitBreaker.js"
import type { RateLimiterStats } from "../llm/RateLimiter.js"
import { RateLimiter } from "../llm/RateLimiter.js"
import { Pricing } from "../llm/Pricing.js"
import { noCalls } from "../usage/UsageQueries.js"
import * as UsageHandlers from "../usage/UsageHandlers.js"
import type { CallFilter, UsageGroup, UsageTotals } from "../usage/UsageRepo.js"
import { UsageRepo } from "../usage/UsageRepo.js"
import type * as DashboardQueries from "./DashboardQueries.js"

export const periods = [30, 90] as const
export type PeriodDays = typeof periods[number]

export interface DashboardParams {
  readonly days: PeriodDays
  readonly before: string | undefined
  readonly filter: CallFilter
}

export interface DaySpend {
  readonly day: string
  readonly total: UsageTotals
  /** This day's figures per model, as `/v1/usage?from=day&to=day&groupBy=model` gives them. */
  readonly models: ReadonlyArray<UsageGroup>
}

export interface Outcome {
  readonly outcome: string
  readonly reason: string
  readonly count: number
}

export interface LiveState {
  readonly at: string
  readonly ai: { readonly on: boolean; readonly detail: string }
  readonly circuit: CircuitState
  readonly rateLimiter: RateLimiterStats
  readonly spoolDepth: number
}

export interface Dashboard {
  readonly generatedAt: string
  readonly today: string
  readonly from: string
  readonly days: PeriodDays
  readonly todayTotal: UsageTotals
  readonly monthFrom: string
  readonly monthTotal: UsageTotals
  readonly budgets: ReadonlyArray<BudgetStatus>
  readonly alertLevels: ReadonlyArray<BigDecimal.BigDecimal>
  /** The most one summary call can cost (default and fallback models, full input budget, full output). */
  readonly worstCaseUsd: Option.Option<BigDecimal.BigDecimal>
  readonly periodTotal: UsageTotals
  readonly byModel: ReadonlyArray<UsageGroup>
  /** `/v1/usage?groupBy=caller` for the period; `(none)` holds the calls made without a caller. */
  readonly byCaller: ReadonlyArray<UsageGroup>
  readonly byDay: ReadonlyArray<DaySpend>
  readonly outcomes: ReadonlyArray<Outcome>
  readonly processStartedAt: string
  readonly mostExpensive: ReadonlyArray<UsageRecord>
  readonly calls: Effect.Effect.Success<ReturnType<typeof UsageHandlers.calls>>
  readonly filter: CallFilter
  /** The cursor this page of calls starts after, if it is not the first. */
  readonly before: string | undefined
  readonly filterValues: {
    readonly models: ReadonlyArray<string>
    readonly purposes: ReadonlyArray<string>
    readonly callers: ReadonlyArray<string>
  }
  readonly live: LiveState
}

const dayMs = 86_400_000


/** The UTC day `n` days after `day` (negative: before). */
export const addDays = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * dayMs).toISOString().slice(0, 10)

const unavailable = () => new ServiceUnavailable({ message: "The usage ledger is unreachable; try again shortly" })

/** `summaries_total` as this process counted it: outcomes are not stored, so nothing older exists. */
export const outcomes: Effect.Effect<ReadonlyArray<Outcome>> = Effect.map(Metric.snapshot, (pairs) =>
  pairs.flatMap((pair) => {
    const state = pair.metricState
    if (pair.metricKey.name !== "summaries_total" || !MetricState.isCounterState(state)) return []
    const tag = (key: string) => pair.metricKey.tags.find((t) => t.key === key)?.value ?? ""
    const count = Number(state.count)
    return count > 0 ? [{ outcome: tag("outcome"), reason: tag("reason"), count }] : []
  }).sort((a, b) => a.outcome.localeCompare(b.outcome) || b.count - a.count || a.reason.localeCompare(b.reason)))

/** Rate limiter, circuit, spool and whether a summary would use the model right now (and if not, why). */
export const live = Effect.gen(function*() {
  const config = yield* Config
  const circuit = yield* CircuitBreaker
  const limiter = yield* RateLimiter
  const guard = yield* BudgetGuard
  const repo = yield* UsageRepo
  const [state, stats, spoolDepth, exhausted, now] = yield* Effect.all([
    circuit.state,
    limiter.stats,
    repo.spoolDepth,
    guard.exhausted,
    Clock.currentTimeMillis
  ], { concurrency: "unbounded" })
  const ai = !config.llm.aiEnabled
    ? { on: false, detail: "Off: AI_ENABLED=false, every summary is the raw diff" }
    : Option.isNone(config.openrouter.apiKey)
    ? { on: false, detail: "Off: no OPENROUTER_API_KEY, every summary is the raw diff (reason no_api_key)" }
    : Option.isSome(exhausted)
    ? {
      on: false,
      detail: `Off: the ${exhausted.value.budget} hard limit is reached (${exhausted.value.committedUsd} of ${exhausted.value.limitUsd} USD)`
    }
    : state === "open"
    ? { on: false, detail: "Paused: the circuit is open after repeated upstream failures; summaries fall back until a probe succeeds" }
    : { on: true, detail: `On: ${config.openrouter.defaultModel}` }
  return { at: new Date(now).toISOString(), ai, circuit: state, rateLimiter: stats, spoolDepth } satisfies LiveState
})

const worstCase = Effect.gen(function*() {
  const config = yield* Config
  const pricing = yield* Pricing
  const prices = yield* Effect.forEach([config.openrouter.defaultModel, ...config.openrouter.fallbackModels], pricing.priceOf)
  const promptTokens = BigDecimal.fromBigInt(BigInt(config.summary.inputBudgetTokens))
  const maxTokens = BigDecimal.fromBigInt(BigInt(config.openrouter.maxTokens))
  const costs = Arr.getSomes(prices).map((p) =>
    BigDecimal.normalize(BigDecimal.sum(BigDecimal.sum(BigDecimal.multiply(promptTokens, p.prompt), BigDecimal.multiply(maxTokens, p.completion)), p.request))
  )
  return Arr.match(costs, { onEmpty: () => Option.none(), onNonEmpty: (all) => Option.some(Arr.reduce(all, all[0], BigDecimal.max)) })
})

/**
 * Each day's figures per model: `/v1/usage?from=D&to=D&groupBy=model`'s own query, asked only for the
 * days that have calls at all (a day without calls has no model to show).
 */
const periodModelsByDay = (from: string, to: string) =>
  Effect.gen(function*() {
    const repo = yield* UsageRepo
    const active = (yield* repo.totals(from, to, "day")).groups.filter((g) => g.calls > 0).map((g) => g.key)
    const perDay = yield* Effect.forEach(active, (day) => Effect.map(repo.totals(day, day, "model"), (r) => [day, r.groups] as const), {
      concurrency: 4
    })
    return new Map(perDay)
  }).pipe(Effect.mapError(unavailable))

/**
 * Everything the page shows. Sums, counts and budgets come from `/v1/usage`'s own handler and its
 * `UsageRepo.totals` query, and the latest calls from `/v1/usage/calls`' handler, so the page can
 * never disagree with the API.
 */
export const load = (queries: Effect.Effect.Success<typeof DashboardQueries.make>, processStartedAt: Date, params: DashboardParams) =>
  Effect.gen(function*() {
    const config = yield* Config
    const now = new Date(yield* Clock.currentTimeMillis)
    const today = periodOf("daily", now)
    const from = addDays(today, -(params.days - 1))
    const monthFrom = `${periodOf("monthly", now)}-01`
    const days = Arr.makeBy(params.days, (i) => addDays(from, i))
    // Five reports show the same budgets: worked out (spend queries included) once per page.
    const budgets = yield* Effect.cached(budgetStatus)

    const [todayReport, monthReport, periodByDay, periodByModel, periodByCaller, perDay, top, values, calls, counted, liveState, worst] = yield* Effect
      .all([
        UsageHandlers.totals({ from: today, to: today, groupBy: "day" }, budgets),
        UsageHandlers.totals({ from: monthFrom, to: today, groupBy: "month" }, budgets),
        UsageHandlers.totals({ from, to: today, groupBy: "day" }, budgets),
        UsageHandlers.totals({ from, to: today, groupBy: "model" }, budgets),
        UsageHandlers.totals({ from, to: today, groupBy: "caller" }, budgets),
        periodModelsByDay(from, today),
        Effect.mapError(queries.mostExpensive(from, today, 10), unavailable),
        Effect.mapError(queries.filterValues(from), unavailable),
        UsageHandlers.calls({
          limit: "20",
          before: params.before,
          model: params.filter.model,
          status: params.filter.status,
          purpose: params.filter.purpose,
          caller: params.filter.caller
        }),
        outcomes,
        live,
        worstCase
      ], { concurrency: 4 })

    const dayTotals = new Map(periodByDay.groups.map((g) => [g.key, g]))
    const byDay = days.map((day): DaySpend => ({
      day,
      total: dayTotals.get(day) ?? noCalls,
      models: perDay.get(day) ?? []
    }))

    return {
      generatedAt: now.toISOString(),
      today,
      from,
      days: params.days,
      todayTotal: todayReport.total,
      monthFrom,
      monthTotal: monthReport.total,
      budgets: todayReport.budgets,
      alertLevels: Arr.sort(Arr.dedupeWith(config.budget.alertLevels, BigDecimal.equals), BigDecimal.Order),
      worstCaseUsd: worst,
      periodTotal: periodByDay.total,
      byModel: periodByModel.groups,
      byCaller: periodByCaller.groups,
      byDay,
      outcomes: counted,
      processStartedAt: processStartedAt.toISOString(),
      mostExpensive: top,
      calls,
      filter: params.filter,
      before: params.before,
      filterValues: values,
      live: liveState
    } satisfies Dashboard
  })
