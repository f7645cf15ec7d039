import { Metric } from "effect"

/**
 * A counter whose tags are known only per call, with one tagged metric kept per combination:
 * `Metric.tagged` builds a new metric key each time, which costs more than the increment itself
 * on a hot path.
 */
export const taggedCounter = <const Keys extends ReadonlyArray<string>>(
  counter: Metric.Metric.Counter<number>,
  ...keys: Keys
) => {
  const cache = new Map<string, Metric.Metric.Counter<number>>()
  return (...values: { readonly [I in keyof Keys]: string }): Metric.Metric.Counter<number> => {
    const id = values.join("\u0000")
    let metric = cache.get(id)
    if (metric === undefined) {
      metric = keys.reduce((m, key, i) => Metric.tagged(m, key, values[i]!), counter)
      cache.set(id, metric)
    }
    return metric
  }
}
