import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Logger, Metric } from "effect"
import { RateLimiter } from "../../../src/llm/RateLimiter.js"
import { guardMs } from "../../../src/llm/RateLimiter.js"
import * as Metrics from "../../../src/llm/RateLimiterMetrics.js"
import { advance, busiestWindow, limiterLayer, settle } from "./ratelimitSupport.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** A 1 s window as enforced, with the default margin (LLM_RATE_LIMIT_MARGIN_MS). */
const second = 1_000 + guardMs(1_000, 20)

/** A call that notes when it started (virtual ms) and then takes `ms`. */
const call = (starts: Array<number>, ms = 50) =>
  Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => starts.push(t))).pipe(
    Effect.zipRight(Effect.sleep(ms))
  )

describe("RateLimiter (in-process, virtual time)", () => {
  it.effect("a burst of 100 at 10 per second finishes in about 10 s and no 1 s window holds more than 10", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const starts: Array<number> = []
      const burst = yield* Effect.fork(
        Effect.forEach(range(100), () => limiter.withPermit(call(starts)), { concurrency: "unbounded", discard: true }).pipe(
          Effect.zipRight(Clock.currentTimeMillis)
        )
      )
      yield* advance(12_000)
      const finishedAt = yield* Fiber.join(burst)

      expect(starts).toHaveLength(100)
      expect(busiestWindow(starts, 1_000)).toBe(10)
      // The whole allowance is used: each second's ten start as soon as the window lets them.
      expect([...starts].sort((a, b) => a - b)).toEqual(range(100).map((i) => Math.floor(i / 10) * second))
      expect(finishedAt).toBeGreaterThanOrEqual(9_000)
      expect(finishedAt).toBeLessThanOrEqual(10_000)
    }).pipe(Effect.provide(limiterLayer({
      LLM_RATE_LIMIT_REQUESTS: "10",
      LLM_RATE_LIMIT_WINDOW_MS: "1000",
      LLM_MAX_CONCURRENCY: "100",
      LLM_QUEUE_MAX: "1000"
    }))))

  it.effect("never runs more calls at once than the concurrency cap", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      let running = 0
      let most = 0
      const tracked = Effect.acquireUseRelease(
        Effect.sync(() => {
          running++
          most = Math.max(most, running)
        }),
        () => Effect.sleep(100),
        () => Effect.sync(() => running--)
      )
      const all = yield* Effect.fork(
        Effect.forEach(range(20), () => limiter.withPermit(tracked), { concurrency: "unbounded", discard: true }).pipe(
          Effect.zipRight(Clock.currentTimeMillis)
        )
      )
      yield* advance(1_000, 10)
      const finishedAt = yield* Fiber.join(all)

      expect(most).toBe(3)
      expect(finishedAt).toBe(700)
      expect((yield* limiter.stats).inFlight).toBe(0)
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "1000", LLM_RATE_LIMIT_WINDOW_MS: "1000", LLM_MAX_CONCURRENCY: "3" }))))

  it.effect("a full queue refuses at once with the time the refused call would really have waited", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const starts: Array<number> = []
      const admitted = yield* Effect.fork(
        Effect.forEach(range(5), () => limiter.withPermit(call(starts, 10)), { concurrency: "unbounded", discard: true })
      )
      yield* settle
      expect(yield* limiter.stats).toMatchObject({ queueDepth: 3, inFlight: 2 })
      const rejectedBefore = (yield* Metric.value(Metrics.rejected)).count

      const refused = yield* Effect.flip(limiter.withPermit(Effect.void))
      expect(refused._tag).toBe("RateLimitQueueFull")
      expect(refused).toMatchObject({ queueDepth: 3, retryAfterMs: 2 * second })
      expect(yield* Clock.currentTimeMillis).toBe(0)
      expect((yield* Metric.value(Metrics.rejected)).count).toBe(rejectedBefore + 1)

      yield* advance(2_100)
      yield* Fiber.join(admitted)
      // The last one queued (the place the refused call asked for) started when the estimate said.
      expect(starts).toEqual([0, 0, second, second, 2 * second])
      // With the queue drained, the next caller is accepted again.
      const later = yield* Effect.fork(limiter.withPermit(call(starts, 10)))
      yield* advance(1_000)
      yield* Fiber.join(later)
      expect(starts).toHaveLength(6)
    }).pipe(Effect.provide(limiterLayer({
      LLM_RATE_LIMIT_REQUESTS: "2",
      LLM_RATE_LIMIT_WINDOW_MS: "1000",
      LLM_MAX_CONCURRENCY: "10",
      LLM_QUEUE_MAX: "3"
    }))))

  it.effect("a provider pause holds every caller until the reset, logged once, then they all proceed", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const lines: Array<string> = []
      const cause = `429 from test-${Math.random()}`
      const pausesBefore = (yield* Metric.value(Metric.tagged(Metrics.pauses, "cause", cause))).count
      const starts: Array<number> = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void lines.push(String(message))))

      yield* Effect.provide(
        Effect.all([limiter.pause(5_000, cause), limiter.pause(5_000, cause), limiter.pause(3_000, cause)], { discard: true }),
        capture
      )
      const callers = yield* Effect.fork(
        Effect.forEach(range(5), () => limiter.withPermit(call(starts)), { concurrency: "unbounded", discard: true })
      )
      yield* advance(4_950)
      expect(starts).toEqual([])
      expect(yield* limiter.stats).toMatchObject({ queueDepth: 5, inFlight: 0, pausedUntilMs: 5_000 })

      yield* advance(200)
      yield* Fiber.join(callers)
      expect(starts).toEqual([5_000, 5_000, 5_000, 5_000, 5_000])
      expect(lines.filter((l) => l.includes("paus"))).toHaveLength(1)
      expect((yield* Metric.value(Metric.tagged(Metrics.pauses, "cause", cause))).count).toBe(pausesBefore + 1)
      expect((yield* limiter.stats).pausedUntilMs).toBeNull()
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "100", LLM_RATE_LIMIT_WINDOW_MS: "1000" }))))

  it.effect("a success ends a pause early", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const starts: Array<number> = []
      yield* limiter.pause(60_000, "429 from test")
      const callers = yield* Effect.fork(
        Effect.forEach(range(3), () => limiter.withPermit(call(starts)), { concurrency: "unbounded", discard: true })
      )
      yield* advance(1_000)
      expect(starts).toEqual([])
      yield* limiter.resume
      yield* advance(100)
      yield* Fiber.join(callers)
      expect(starts).toEqual([1_000, 1_000, 1_000])
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "100", LLM_RATE_LIMIT_WINDOW_MS: "1000" }))))

  it.effect("callers start in the order they arrived, also those arriving while others wait", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const arrived: Array<number> = []
      const started: Array<number> = []
      const caller = (id: number) =>
        Effect.sync(() => arrived.push(id)).pipe(
          Effect.zipRight(limiter.withPermit(Effect.sync(() => started.push(id)).pipe(Effect.zipRight(Effect.sleep(30)))))
        )
      const fibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
      for (const wave of range(4)) {
        for (const i of range(8)) fibers.push(yield* Effect.fork(caller(wave * 8 + i)))
        yield* advance(250)
      }
      yield* advance(4_000)
      yield* Fiber.joinAll(fibers)
      expect(started).toHaveLength(32)
      expect(started).toEqual(arrived)
    }).pipe(Effect.provide(limiterLayer({
      LLM_RATE_LIMIT_REQUESTS: "1",
      LLM_RATE_LIMIT_WINDOW_MS: "100",
      LLM_MAX_CONCURRENCY: "4"
    }))))

  it.effect("an interrupted waiter leaves the queue and an interrupted call frees its slot", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const starts: Array<string> = []
      const named = (name: string, ms: number) =>
        limiter.withPermit(Effect.sync(() => starts.push(name)).pipe(Effect.zipRight(Effect.sleep(ms))))
      const a = yield* Effect.fork(named("a", 60_000))
      yield* settle
      const b = yield* Effect.fork(named("b", 10))
      const c = yield* Effect.fork(named("c", 10))
      yield* settle
      expect(yield* limiter.stats).toMatchObject({ queueDepth: 2, inFlight: 1 })

      yield* Fiber.interrupt(b)
      expect((yield* limiter.stats).queueDepth).toBe(1)
      // The only lane is held by `a`; interrupting it must hand the lane to `c`, not leak it.
      yield* Fiber.interrupt(a)
      yield* advance(200)
      yield* Fiber.join(c)
      expect(starts).toEqual(["a", "c"])
      expect(yield* limiter.stats).toMatchObject({ queueDepth: 0, inFlight: 0 })
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "100", LLM_RATE_LIMIT_WINDOW_MS: "100", LLM_MAX_CONCURRENCY: "1" }))))

  it.effect("a stricter limit reported by the provider binds; a looser one changes nothing", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const starts: Array<number> = []
      const burst = (n: number) =>
        Effect.forEach(range(n), () => limiter.withPermit(call(starts, 10)), { concurrency: "unbounded", discard: true })

      yield* limiter.adoptProviderLimit(100, 1_000)
      const loose = yield* Effect.fork(burst(10))
      yield* advance(100)
      yield* Fiber.join(loose)
      expect(starts).toEqual(range(10).map(() => 0))

      starts.length = 0
      yield* advance(1_000)
      yield* limiter.adoptProviderLimit(2, 1_000)
      const strict = yield* Effect.fork(burst(6))
      yield* advance(3_000)
      yield* Fiber.join(strict)
      expect(starts).toEqual([1_100, 1_100, 1_100 + second, 1_100 + second, 1_100 + 2 * second, 1_100 + 2 * second])
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "10", LLM_RATE_LIMIT_WINDOW_MS: "1000", LLM_MAX_CONCURRENCY: "20" }))))
})
