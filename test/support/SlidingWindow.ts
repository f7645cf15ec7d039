/** The most timestamps found in any half-open span [t, t + windowMs): what a sliding-window limit bounds. */
export const busiestWindow = (timestamps: ReadonlyArray<number>, windowMs: number): number => {
  const sorted = [...timestamps].sort((a, b) => a - b)
  let best = 0
  let lo = 0
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= windowMs) lo++
    best = Math.max(best, hi - lo + 1)
  }
  return best
}

/** The shortest span from the first to the last of any `count` consecutive timestamps. */
export const tightestSpan = (timestamps: ReadonlyArray<number>, count: number): number => {
  const sorted = [...timestamps].sort((a, b) => a - b)
  let best = Infinity
  for (let i = count - 1; i < sorted.length; i++) best = Math.min(best, sorted[i]! - sorted[i - count + 1]!)
  return best
}
