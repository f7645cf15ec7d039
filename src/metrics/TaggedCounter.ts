import { Array as Arr, Metric, MetricLabel } from "effect"

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
      // One labels array per combination, passed as it is: the counter keeps its hook per array, so
      // an update finds it at once instead of building and hashing a new key (`Metric.tagged` unions
      // the labels into a new array on every update).
      const labels = keys.map((key, i) => MetricLabel.make(key, values[i]!))
      const withLabels = (extra: ReadonlyArray<MetricLabel.MetricLabel>) => (extra.length === 0 ? labels : Arr.union(labels, extra))
      metric = Metric.make(
        counter.keyType,
        (input: number, extra) => counter.unsafeUpdate(input, withLabels(extra)),
        (extra) => counter.unsafeValue(withLabels(extra)),
        (input: number, extra) => counter.unsafeModify(input, withLabels(extra))
      )
      cache.set(id, metric)
    }
    return metric
  }
}
