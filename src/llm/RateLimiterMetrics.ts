import { Metric, MetricBoundaries } from "effect"

export const queueDepth = Metric.gauge("llm_ratelimit_queue_depth", {
  description: "Upstream calls waiting for a rate-limit slot (not counting those in flight)"
})

export const waitMs = Metric.histogram(
  "llm_ratelimit_wait_ms",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 20 }),
  "Time each upstream call waited for its rate-limit slot, in milliseconds"
)

export const pauses = Metric.counter("llm_ratelimit_pauses_total", {
  description: "Pauses of every upstream call, by cause (such as a provider 429)",
  incremental: true
})

export const rejected = Metric.counter("llm_ratelimit_rejected_total", {
  description: "Calls refused at once because the rate-limit wait queue was full",
  incremental: true
})

export const fallback = Metric.gauge("llm_ratelimit_redis_fallback", {
  description: "1 while the shared Redis window is unreachable and the local share is used"
})
