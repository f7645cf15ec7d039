import { Metric } from "effect"

/** Alerts that every channel accepted, by budget (`daily`, `monthly`) and level (`0.8`). */
export const alertsSent = Metric.counter("budget_alerts_sent_total", {
  description: "Cost alerts delivered, once per budget, period and level"
})

/** Failed attempts to deliver an alert to a channel; each is retried on a later run. */
export const alertSendFailures = Metric.counter("budget_alert_send_failures_total", {
  description: "Cost alert deliveries that failed (retried later)"
})

/** Upstream calls refused by the hard cap. */
export const exceeded = Metric.counter("budget_exceeded_total", {
  description: "Calls refused because they would exceed a hard budget limit"
})

/** Spend of the current period (`period` = `daily` | `monthly`) as of the monitor's last run; for display only, money stays exact elsewhere. */
export const spend = Metric.gauge("budget_spend_usd", {
  description: "Spend of the current UTC day or month at the cost monitor's last run"
})

/** Monitor runs that failed (database unreachable, ...); the schedule continues. */
export const monitorRunFailures = Metric.counter("budget_monitor_run_failures_total", {
  description: "Cost monitor runs that failed; the next run is on schedule"
})
