import { Effect, Metric, MetricState, Option } from "effect"
import type { MetricPair } from "effect"
import type { Registry } from "prom-client"

const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra: Record<string, string> = {}) => {
  const all = [...tags.map((t) => [t.key, t.value] as const), ...Object.entries(extra)]
  return all.length === 0 ? "" : `{${all.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`
}

const number = (n: number | bigint) => (typeof n === "bigint" ? n.toString() : Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : "-Inf")

const render = (pair: MetricPair.MetricPair.Untyped): { readonly type: string; readonly lines: ReadonlyArray<string> } => {
  const { name, tags } = pair.metricKey
  const state = pair.metricState
  if (MetricState.isCounterState(state)) return { type: "counter", lines: [`${name}${labels(tags)} ${number(state.count)}`] }
  if (MetricState.isGaugeState(state)) return { type: "gauge", lines: [`${name}${labels(tags)} ${number(state.value)}`] }
  if (MetricState.isHistogramState(state)) {
    return {
      type: "histogram",
      lines: [
        ...state.buckets.map(([le, count]) => `${name}_bucket${labels(tags, { le: number(le) })} ${count}`),
        `${name}_sum${labels(tags)} ${number(state.sum)}`,
        `${name}_count${labels(tags)} ${state.count}`
      ]
    }
  }
  if (MetricState.isFrequencyState(state)) {
    return { type: "counter", lines: [...state.occurrences].map(([key, count]) => `${name}${labels(tags, { key })} ${count}`) }
  }
  if (MetricState.isSummaryState(state)) {
    return {
      type: "summary",
      lines: [
        ...state.quantiles.flatMap(([q, v]) => Option.isSome(v) ? [`${name}${labels(tags, { quantile: String(q) })} ${number(v.value)}`] : []),
        `${name}_sum${labels(tags)} ${number(state.sum)}`,
        `${name}_count${labels(tags)} ${state.count}`
      ]
    }
  }
  return { type: "untyped", lines: [] }
}

let processRegistry: Promise<Registry> | undefined

/**
 * The process metrics every dashboard expects (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
 * `nodejs_eventloop_lag_seconds`, `nodejs_heap_size_used_bytes`, ...), from prom-client in a registry of
 * their own, loaded and started on the first scrape (so the CLI and the start never pay for it).
 */
const processMetrics = Effect.promise(() => {
  processRegistry ??= import("prom-client").then(({ collectDefaultMetrics, Registry }) => {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    return registry
  })
  return processRegistry.then((registry) => registry.metrics())
})

/** Every metric defined with effect's `Metric`, in Prometheus' text exposition format. */
const effectMetrics: Effect.Effect<string> = Effect.map(Metric.snapshot, (pairs) => {
  const families = new Map<string, { type: string; help: string; lines: Array<string> }>()
  for (const pair of pairs) {
    const { type, lines } = render(pair)
    const name = pair.metricKey.name
    const family = families.get(name) ?? { type, help: Option.getOrElse(pair.metricKey.description, () => name), lines: [] }
    family.lines.push(...lines)
    families.set(name, family)
  }
  return [...families].sort(([a], [b]) => a.localeCompare(b))
    .map(([name, f]) => `# HELP ${name} ${escape(f.help)}\n# TYPE ${name} ${f.type}\n${f.lines.join("\n")}`)
    .join("\n") + "\n"
})

/** The service's own metrics, then the process metrics. */
export const prometheusText: Effect.Effect<string> = Effect.map(
  Effect.all([effectMetrics, processMetrics]),
  ([own, process]) => `${own}${process.endsWith("\n") ? process : `${process}\n`}`
)
