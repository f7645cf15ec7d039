import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, TestClock } from "effect"
import type { LlmError } from "../../../src/domain/LlmError.js"
import { CircuitOpen, UpstreamRateLimited, UpstreamServerError } from "../../../src/domain/LlmError.js"
import { retryPolicy } from "../../../src/llm/RetryPolicy.js"

const settings = { maxRetries: 3, retryBaseMs: 100, retryMaxWaitMs: 10_000 }

/** When (virtual ms after the first) each attempt began, failing with `errors` in turn, under the retry policy. */
const attempts = (errors: ReadonlyArray<LlmError> | ((startMs: number) => ReadonlyArray<LlmError>), s = settings) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const list = typeof errors === "function" ? errors(start) : errors
    const at: Array<number> = []
    const attempt = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      at.push(now)
      const error = list[Math.min(at.length - 1, list.length - 1)]!
      return Effect.fail(error)
    })
    const fiber = yield* Effect.fork(Effect.either(Effect.retry(attempt, retryPolicy(s))))
    yield* TestClock.adjust(600_000)
    yield* Fiber.join(fiber)
    return at.map((t) => t - start)
  })

const server = new UpstreamServerError({ message: "down", status: 503 })
const limited = (rateLimit: { retryAfterMs?: number; resetAtMs?: number }) =>
  new UpstreamRateLimited({ message: "slow down", status: 429, rateLimit })

describe("retry policy", () => {
  it.effect("backs off base, 2 x base, 4 x base for at most maxRetries retries", () =>
    Effect.gen(function*() {
      expect(yield* attempts([server])).toEqual([0, 100, 300, 700])
      expect(yield* attempts([server], { ...settings, maxRetries: 0 })).toEqual([0])
    }))

  it.effect("never retries what cannot succeed later", () =>
    Effect.gen(function*() {
      expect(yield* attempts([new CircuitOpen({ retryAfterMs: 10 })])).toEqual([0])
    }))

  it.effect("waits what the provider asks when it is longer than the backoff, and only then", () =>
    Effect.gen(function*() {
      expect(yield* attempts([limited({ retryAfterMs: 2_000 }), server])).toEqual([0, 2_000, 2_200, 2_600])
      expect(yield* attempts([limited({ retryAfterMs: 50 }), server])).toEqual([0, 100, 300, 700])
      // The reset is a moment in time: 3 s from the first attempt.
      expect(yield* attempts((start) => [limited({ resetAtMs: start + 3_000 }), server])).toEqual([0, 3_000, 3_200, 3_600])
    }))

  it.effect("a requested wait up to retryMaxWaitMs is honoured; a longer one fails at once", () =>
    Effect.gen(function*() {
      expect(yield* attempts([limited({ retryAfterMs: 10_000 }), server], { ...settings, maxRetries: 1 })).toEqual([0, 10_000])
      expect(yield* attempts([limited({ retryAfterMs: 10_001 })])).toEqual([0])
      expect(yield* attempts([server, limited({ retryAfterMs: 60_000 })])).toEqual([0, 100])
    }))
})
