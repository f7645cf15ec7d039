import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { StartLog, type WindowRule } from "../../../src/llm/SlidingWindow.js"

/**
 * The model: the newest starts in a plain list, as many as the largest rule needs (the log's
 * documented memory). A rule raised later cannot count starts dropped before, only know they were
 * no later than the oldest kept: once some were `forgotten`, the model takes them as any number
 * at that time. A start at `s` is inside the window of `rule` at time `t` while `t - s < windowMs`;
 * one more start fits at `t` when every rule still has room. Granted-but-unrecorded (`pending`)
 * starts count as starting at `now`.
 */
const fits = (starts: ReadonlyArray<number>, now: number, pending: number, rules: ReadonlyArray<WindowRule>, t: number, forgotten = false) =>
  rules.every(({ requests, windowMs }) =>
    !(forgotten && t - starts[0]! < windowMs) &&
    starts.filter((s) => t - s < windowMs).length + (t - now < windowMs ? pending : 0) < requests
  )

/** The earliest time at or after `now` when one more start fits: a start leaving a window is the only event that frees room. */
const earliestFit = (starts: ReadonlyArray<number>, now: number, pending: number, rules: ReadonlyArray<WindowRule>, forgotten = false) => {
  const candidates = [now, ...rules.flatMap(({ windowMs }) => [now + windowMs, ...starts.map((s) => s + windowMs)])]
    .filter((t) => t >= now)
    .sort((a, b) => a - b)
  return candidates.find((t) => fits(starts, now, pending, rules, t, forgotten))!
}

/** Where the `position`-th next start lands if every start goes as early as the rules let it. */
const simulated = (starts: ReadonlyArray<number>, now: number, position: number, rules: ReadonlyArray<WindowRule>) => {
  // Starts that left every window long ago change nothing.
  const longest = Math.max(...rules.map((r) => r.windowMs))
  const all = starts.filter((s) => now - s < longest)
  let at = now
  for (let i = 0; i < position; i++) {
    at = earliestFit(all, now, 0, rules)
    all.push(at)
  }
  return at - now
}

type Step =
  | { readonly kind: "start"; readonly afterMs: number }
  | { readonly kind: "rule"; readonly requests: number }
  | { readonly kind: "check"; readonly afterMs: number; readonly pending: number; readonly seed: ReadonlyArray<readonly [number, number]>; readonly position: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("start" as const), afterMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("rule" as const), requests: fc.integer({ min: 1, max: 40 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("check" as const),
      afterMs: fc.integer({ min: 0, max: 60 }),
      pending: fc.integer({ min: 0, max: 3 }),
      // Each rule as (a share of the log's capacity, a window): requests never exceed what the log keeps.
      seed: fc.array(fc.tuple(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 200 })), { minLength: 1, maxLength: 3 }),
      position: fc.integer({ min: 1, max: 45 })
    })
  }
)

/** Replays the steps on a `StartLog` and on the model side by side, calling `check` at each check step. */
const replay = (
  capacity: number,
  steps: ReadonlyArray<Step>,
  check: (log: StartLog, starts: ReadonlyArray<number>, now: number, pending: number, rules: ReadonlyArray<WindowRule>, position: number, forgotten: boolean) => void
) => {
  const log = new StartLog(capacity)
  const starts: Array<number> = []
  let forgotten = false
  let kept = capacity
  let now = 0
  for (const s of steps) {
    if (s.kind === "rule") {
      log.ensureCapacity(s.requests)
      kept = Math.max(kept, s.requests)
    } else if (s.kind === "start") {
      now += s.afterMs
      log.record(now)
      starts.push(now)
      // The log keeps the newest starts the largest rule needs; older ones are forgotten for good.
      if (starts.length > kept) {
        starts.splice(0, starts.length - kept)
        forgotten = true
      }
    } else {
      now += s.afterMs
      const rules = s.seed.map(([share, windowMs]) => ({ requests: 1 + (share % kept), windowMs }))
      check(log, starts, now, s.pending, rules, s.position, forgotten)
    }
  }
}

const runs = { numRuns: 300 }

describe("StartLog (the in-process sliding window) against a plain list of the newest starts", () => {
  it("lets a start begin now exactly when it keeps every rule, and otherwise names the earliest moment it would", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(step, { maxLength: 120 }), (capacity, steps) =>
        replay(capacity, steps, (log, starts, now, pending, rules, _position, forgotten) => {
          const wait = log.waitMs(now, rules, pending)
          expect(wait === 0).toBe(fits(starts, now, pending, rules, now, forgotten))
          const earliest = earliestFit(starts, now, pending, rules, forgotten) - now
          // Granted starts that alone fill a window: the dispatcher looks again after one window at most.
          if (rules.every((r) => pending < r.requests)) expect(wait).toBe(earliest)
          else expect(wait).toBeGreaterThan(0)
        })
      ),
      runs
    )
  })

  it("estimates when the n-th caller in line would start: exact under one rule, never later than possible under several", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(step, { maxLength: 120 }), (capacity, steps) =>
        replay(capacity, steps, (log, starts, now, _pending, rules, position) => {
          const single = [rules[0]!]
          expect(log.estimateMs(now, position, single)).toBe(simulated(starts, now, position, single))
          const estimate = log.estimateMs(now, position, rules)
          expect(estimate).toBeLessThanOrEqual(simulated(starts, now, position, rules))
          // Never earlier than the strictest rule alone allows.
          expect(estimate).toBe(Math.max(...rules.map((r) => log.estimateMs(now, position, [r]))))
        })
      ),
      { numRuns: 150 }
    )
  })

  it("a limit raised after the log has wrapped keeps the older starts, in order", () => {
    // 20 per 100 ms: the log keeps 20, wraps, then must keep 30 once the provider announces 30 per 1000 ms.
    const log = new StartLog(20)
    for (let t = 0; t < 25; t++) log.record(t)
    log.ensureCapacity(30)
    for (let t = 25; t < 35; t++) log.record(t)
    // 30 starts from 5 to 34: the 31st may begin when the one at 5 leaves the window, at 1005.
    expect(log.waitMs(35, [{ requests: 30, windowMs: 1_000 }])).toBe(1_005 - 35)
    // 35 starts really went in this second; the 5 forgotten ones (0 to 4) are bounded by the oldest
    // kept: a limit of 31 waits until that one leaves the window too, rather than admitting 31 - 30 more now.
    expect(log.waitMs(35, [{ requests: 31, windowMs: 1_000 }])).toBe(1_005 - 35)
    expect(log.waitMs(1_005, [{ requests: 31, windowMs: 1_000 }])).toBe(0)
    // Every n-th newest start is where it belongs: the one at 35 - n.
    for (let n = 1; n <= 30; n++) expect(log.waitMs(35, [{ requests: n, windowMs: 1_000 }])).toBe(1_000 - n)
  })

  it("holds no more starts than the largest limit, however many calls a long-running service makes", () => {
    const log = new StartLog(3)
    // The ring is private; its size is what the service's memory holds per limiter.
    const kept = () => log["ring"].length
    for (let t = 0; t < 10_000; t++) log.record(t)
    expect(kept()).toBe(3)
    log.ensureCapacity(40)
    log.ensureCapacity(5)
    for (let t = 10_000; t < 20_000; t++) log.record(t)
    expect(kept()).toBe(40)
    expect(log.waitMs(20_000, [{ requests: 40, windowMs: 100 }])).toBe(19_960 + 100 - 20_000)
  })

  it("a start moved to when it reached the wire holds the window from then, the others keeping their place", () => {
    // 3 per 1000 ms, in a ring that has wrapped: starts at 10, 20, 30 kept.
    const log = new StartLog(3)
    for (const t of [0, 10, 20, 30]) log.record(t)
    log.move(10, 300)
    // Now 20, 30, 300: the next start waits for the one at 20, not 10, to leave.
    expect(log.waitMs(300, [{ requests: 3, windowMs: 1_000 }])).toBe(1_020 - 300)
    expect(log.waitMs(300, [{ requests: 1, windowMs: 1_000 }])).toBe(1_300 - 300)
    expect(log.waitMs(300, [{ requests: 2, windowMs: 1_000 }])).toBe(1_030 - 300)
  })

  it("a start no longer kept, moved, is counted anew rather than lost", () => {
    const log = new StartLog(2)
    for (const t of [0, 10, 20]) log.record(t)
    // The start at 0 was overwritten; at 500 it reached the wire: 20 and 500 are the newest two.
    log.move(0, 500)
    expect(log.waitMs(500, [{ requests: 2, windowMs: 1_000 }])).toBe(1_020 - 500)
    expect(log.waitMs(500, [{ requests: 1, windowMs: 1_000 }])).toBe(1_500 - 500)
  })
})
