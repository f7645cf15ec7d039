/** Budgets are watched per UTC day and per UTC month; a new one starts a new period. */
export type BudgetPeriod = "daily" | "monthly"

/** `2026-11-29` for a daily budget, `2026-11` for a monthly one, at `now` (UTC). */
export const periodOf = (budget: BudgetPeriod, now: Date): string =>
  now.toISOString().slice(0, budget === "daily" ? 10 : 7)

/** The first and last UTC day (both inclusive) of a period, as the ledger queries take them. */
export const daysOf = (budget: BudgetPeriod, period: string): { readonly from: string; readonly to: string } => {
  if (budget === "daily") return { from: period, to: period }
  const [year, month] = period.split("-").map(Number) as [number, number]
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate()
  return { from: `${period}-01`, to: `${period}-${String(lastDay).padStart(2, "0")}` }
}
