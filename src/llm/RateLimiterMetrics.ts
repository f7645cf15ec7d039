import { Metric, MetricBoundaries } from "effect"

export const queueDepth = Metric.gauge("llm_ratelimit_queue_depth", {
  description: "Upstream calls waiting for a rate-limit slot (not counting those in flight)"
})

export const waitSeconds = Metric.histogram(
  "llm_ratelimit_wait_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 20 }),
  "Time each upstream call waited for its rate-limit slot, in seconds"
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
