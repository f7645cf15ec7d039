import { Array as Arr, Metric, MetricLabel } from "effect"

/**
 * A metric (counter, histogram, ...) whose tags are known only per call, with one tagged metric
 * kept per combination: `Metric.tagged` builds a new metric key each time, which costs more than
 * the update itself on a hot path.
 */
export const taggedMetric = <Type, Out, const Keys extends ReadonlyArray<string>>(
  metric: Metric.Metric<Type, number, Out>,
  ...keys: Keys
) => {
  const cache = new Map<string, Metric.Metric<Type, number, Out>>()
  return (...values: { readonly [I in keyof Keys]: string }): Metric.Metric<Type, number, Out> => {
    const id = values.join("\u0000")
    let tagged = cache.get(id)
    if (tagged === undefined) {
      // One labels array per combination, passed as it is: the metric keeps its hook per array, so
      // an update finds it at once instead of building and hashing a new key (`Metric.tagged` unions
      // the labels into a new array on every update).
      const labels = keys.map((key, i) => MetricLabel.make(key, values[i]!))
      const withLabels = (extra: ReadonlyArray<MetricLabel.MetricLabel>) => (extra.length === 0 ? labels : Arr.union(labels, extra))
      tagged = Metric.make(
        metric.keyType,
        (input: number, extra) => metric.unsafeUpdate(input, withLabels(extra)),
        (extra) => metric.unsafeValue(withLabels(extra)),
        (input: number, extra) => metric.unsafeModify(input, withLabels(extra))
      )
      cache.set(id, tagged)
    }
    return tagged
  }
}
