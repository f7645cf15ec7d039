import { BigDecimal } from "effect"
import { format as exact } from "../domain/Money.js"
import type { BudgetPeriod } from "../domain/Period.js"

export interface ModelCost {
  readonly model: string
  readonly costUsd: BigDecimal.BigDecimal
  readonly calls: number
}

/** The facts of one alert: a level of a budget reached in a period. */
export interface CostAlert {
  readonly budget: BudgetPeriod
  /** Set on a caller's own budget (`CALLER_BUDGETS_MONTHLY_USD`). */
  readonly caller?: string
  readonly period: string
  readonly level: BigDecimal.BigDecimal
  readonly limitUsd: BigDecimal.BigDecimal
  readonly spentUsd: BigDecimal.BigDecimal
  /** Every upstream call of the period, failed ones included. */
  readonly calls: number
  /** The most expensive models of the period, most expensive first. */
  readonly topModels: ReadonlyArray<ModelCost>
}

const app = "policy-summarizer"

const hundred = BigDecimal.fromBigInt(100n)

/** `$8.12`; amounts under a dollar keep four decimals so that small budgets stay readable. */
export const usd = (amount: BigDecimal.BigDecimal): string => {
  const scale = BigDecimal.lessThan(BigDecimal.abs(amount), BigDecimal.fromBigInt(1n)) ? 4 : 2
  const [whole, fraction = ""] = exact(BigDecimal.round(amount, { scale })).split(".")
  return `$${whole}.${fraction.padEnd(2, "0")}`
}

/** `0.8` -> `80%`. */
export const percent = (fraction: BigDecimal.BigDecimal): string => `${exact(BigDecimal.multiply(fraction, hundred))}%`

const title = (alert: CostAlert) =>
  `${alert.caller === undefined ? "" : `Caller ${alert.caller}: `}${alert.budget === "daily" ? "Daily" : "Monthly"} LLM budget ${percent(alert.level)} reached`

/** Triage from the inbox: `[policy-summarizer] Monthly LLM budget 80% reached: $8.12 of $10.00 (2026-11)`. */
export const subject = (alert: CostAlert): string =>
  `[${app}] ${title(alert)}: ${usd(alert.spentUsd)} of ${usd(alert.limitUsd)} (${alert.period})`

export const text = (alert: CostAlert): string =>
  [
    `${title(alert)} for ${alert.period} (UTC).`,
    "",
    `Spent:  ${usd(alert.spentUsd)} (exactly ${exact(alert.spentUsd)} USD)`,
    `Budget: ${usd(alert.limitUsd)} (${alert.budget}${alert.caller === undefined ? "" : `, caller ${alert.caller}`})`,
    `Level:  ${percent(alert.level)}`,
    `Period: ${alert.period}`,
    `Calls:  ${alert.calls}`,
    "",
    "Top models by cost:",
    ...(alert.topModels.length === 0
      ? ["  (none)"]
      : alert.topModels.map((m) => `  ${m.model}: ${usd(m.costUsd)} in ${m.calls} call${m.calls === 1 ? "" : "s"}`)),
    "",
    `Sent by ${app}. Each level alerts once per period.`
  ].join("\n")

/** The webhook body: the same facts as JSON, with `text` for chat webhooks. */
export const payload = (alert: CostAlert) => ({
  text: subject(alert).replace(`[${app}] `, `${app}: `),
  budget: alert.budget,
  ...(alert.caller === undefined ? {} : { caller: alert.caller }),
  period: alert.period,
  level: exact(alert.level),
  limitUsd: exact(alert.limitUsd),
  spentUsd: exact(alert.spentUsd),
  calls: alert.calls,
  topModels: alert.topModels.map((m) => ({ model: m.model, costUsd: exact(m.costUsd), calls: m.calls }))
})
