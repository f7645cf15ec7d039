import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import { RateLimiter } from "../../../src/llm/RateLimiter.js"
import { advance, limiterLayer, settle } from "./ratelimitSupport.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

interface Start {
  readonly owner: string
  readonly index: number
  readonly at: number
}

/** `n` permits asked at once by `owner`, each noting its start and taking 50 virtual ms. */
const burst = (owner: string, n: number, starts: Array<Start>) =>
  Effect.flatMap(RateLimiter, (limiter) =>
    Effect.fork(Effect.forEach(
      range(n),
      (index) =>
        limiter.withPermit(
          Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => starts.push({ owner, index, at }))).pipe(Effect.zipRight(Effect.sleep(50))),
          owner
        ),
      { concurrency: "unbounded", discard: true }
    )))

const tenPerSecond = limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "10", LLM_RATE_LIMIT_WINDOW_MS: "1000", LLM_MAX_CONCURRENCY: "4" })

describe("RateLimiter fairness (issue 10 §3, virtual time)", () => {
  it.effect("a 1-part summary asked just after a 200-part one waits for at most one more of its permits, not for all of them", () =>
    Effect.gen(function*() {
      const starts: Array<Start> = []
      const big = yield* burst("big", 200, starts)
      yield* settle
      const small = yield* burst("small", 1, starts)
      yield* advance(2_000)
      const smallStart = starts.find((s) => s.owner === "small")
      expect(smallStart).toBeDefined()
      yield* Fiber.join(small)
      // 4 lanes were taken at once by the big request; the small one waits for at most one more of its
      // permits (the big one's turn in this round), not for all 196 queued (first in, first out: index 200).
      expect(starts.indexOf(smallStart!)).toBeLessThanOrEqual(5)
      expect(smallStart!.at).toBeLessThanOrEqual(50)
      yield* advance(25_000)
      yield* Fiber.join(big)
      // Within one owner the order is still first in, first out.
      expect(starts.filter((s) => s.owner === "big").map((s) => s.index)).toEqual(range(200))
    }).pipe(Effect.provide(tenPerSecond)))

  it.effect("owners waiting together take turns, one permit each", () =>
    Effect.gen(function*() {
      const starts: Array<Start> = []
      const fibers = [yield* burst("a", 10, starts)]
      yield* settle
      fibers.push(yield* burst("b", 6, starts), yield* burst("c", 3, starts))
      yield* settle
      yield* advance(5_000)
      yield* Fiber.joinAll(fibers)
      // a took the 4 lanes at once; from then on a, b and c alternate until c, then b, run out.
      expect(starts.map((s) => s.owner).join("")).toBe("aaaa" + "abc".repeat(3) + "ab".repeat(3))
      expect(starts.filter((s) => s.owner === "b").map((s) => s.index)).toEqual(range(6))
    }).pipe(Effect.provide(tenPerSecond)))

  it.effect("the turns also alternate with a waiting owner that already had permits", () =>
    Effect.gen(function*() {
      const starts: Array<Start> = []
      const a = yield* burst("a", 16, starts)
      yield* settle
      const b = yield* burst("b", 4, starts)
      yield* settle
      yield* advance(5_000)
      yield* Fiber.joinAll([a, b])
      expect(starts.map((s) => s.owner).join("")).toBe("aaaa" + "ab".repeat(4) + "a".repeat(8))
    }).pipe(Effect.provide(tenPerSecond)))
})

describe("RateLimiter queue-full estimate (issue 10 §7)", () => {
  it.effect("before any call has finished, a refusal estimates the drain from an assumed 1 s a call, not 1 ms", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const admitted = yield* Effect.fork(
        Effect.forEach(range(4), () => limiter.withPermit(Effect.sleep(900)), { concurrency: "unbounded", discard: true })
      )
      yield* settle
      expect(yield* limiter.stats).toMatchObject({ queueDepth: 3, inFlight: 1 })
      const refused = yield* Effect.flip(limiter.withPermit(Effect.void))
      // One lane: the call in flight, the 3 queued, then this one: 5 calls of 1 s.
      expect(refused).toMatchObject({ _tag: "RateLimitQueueFull", retryAfterMs: 5_000 })
      yield* advance(4_000)
      yield* Fiber.join(admitted)
      // Once calls have finished, their measured length counts instead (900 ms each).
      const again = yield* Effect.fork(Effect.forEach(range(4), () => limiter.withPermit(Effect.sleep(900)), { concurrency: "unbounded", discard: true }))
      yield* settle
      expect(yield* Effect.flip(limiter.withPermit(Effect.void))).toMatchObject({ retryAfterMs: 4_500 })
      yield* advance(4_000)
      yield* Fiber.join(again)
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "1000", LLM_MAX_CONCURRENCY: "1", LLM_QUEUE_MAX: "3" }))))
})
