import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Fiber, Layer, Metric, TestClock } from "effect"
import { Config } from "../../../src/Config.js"
import { CircuitBreaker } from "../../../src/llm/CircuitBreaker.js"
import { shortCircuits, stateGauge } from "../../../src/llm/CircuitBreaker.js"

const breakerLayer = CircuitBreaker.layer.pipe(
  Layer.provide(Config.layer),
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
    ["LLM_CIRCUIT_THRESHOLD", "3"],
    ["LLM_CIRCUIT_COOLDOWN_MS", "10000"]
  ]))))
)

/** An upstream call that counts how often it really ran. */
const upstream = () => {
  let calls = 0
  return { run: Effect.sync(() => ++calls), calls: () => calls }
}

const failTimes = (n: number) =>
  Effect.flatMap(CircuitBreaker, (breaker) => Effect.repeatN(breaker.recordTransientFailure, n - 1))

describe("CircuitBreaker (virtual time)", () => {
  it.effect("opens after the threshold of consecutive transient failures and refuses without calling upstream", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker
      const call = upstream()
      const refusedBefore = (yield* Metric.value(shortCircuits)).count

      yield* failTimes(2)
      yield* breaker.recordSuccess
      yield* failTimes(2)
      // A success in between reset the count: four failures, never three in a row.
      expect(yield* breaker.state).toBe("closed")
      yield* breaker.guard(call.run)
      expect(call.calls()).toBe(1)

      yield* failTimes(1)
      expect(yield* breaker.state).toBe("open")
      expect((yield* Metric.value(stateGauge)).value).toBe(2)
      yield* TestClock.adjust(4_000)
      const refused = yield* Effect.flip(breaker.guard(call.run))
      expect(refused).toMatchObject({ _tag: "CircuitOpen", retryAfterMs: 6_000 })
      expect(call.calls()).toBe(1)
      expect((yield* Metric.value(shortCircuits)).count).toBe(refusedBefore + 1)
    }).pipe(Effect.provide(breakerLayer)))

  it.effect("after the cooldown lets exactly one probe through, and its success closes the circuit", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker
      yield* failTimes(3)
      yield* TestClock.adjust(10_000)

      const probeMayFinish = yield* Deferred.make<void>()
      const call = upstream()
      const probe = yield* Effect.fork(breaker.guard(
        call.run.pipe(Effect.zipRight(Deferred.await(probeMayFinish)), Effect.zipRight(breaker.recordSuccess))
      ))
      yield* Effect.yieldNow()
      expect(yield* breaker.state).toBe("half_open")
      expect((yield* Metric.value(stateGauge)).value).toBe(1)
      const others = yield* Effect.all(Array.from({ length: 5 }, () => Effect.flip(breaker.guard(call.run))))
      expect(others.every((e) => e._tag === "CircuitOpen")).toBe(true)
      expect(call.calls()).toBe(1)

      yield* Deferred.succeed(probeMayFinish, undefined)
      yield* Fiber.join(probe)
      expect(yield* breaker.state).toBe("closed")
      yield* breaker.guard(call.run)
      expect(call.calls()).toBe(2)
    }).pipe(Effect.provide(breakerLayer)))

  it.effect("a failed probe re-opens the circuit for another full cooldown", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker
      const call = upstream()
      yield* failTimes(3)
      yield* TestClock.adjust(10_000)
      yield* breaker.guard(call.run.pipe(Effect.zipRight(breaker.recordTransientFailure)))
      expect(yield* breaker.state).toBe("open")

      yield* TestClock.adjust(9_999)
      expect(yield* Effect.flip(breaker.guard(call.run))).toMatchObject({ retryAfterMs: 1 })
      expect(call.calls()).toBe(1)
      yield* TestClock.adjust(1)
      yield* breaker.guard(call.run.pipe(Effect.zipRight(breaker.recordSuccess)))
      expect(yield* breaker.state).toBe("closed")
      expect(call.calls()).toBe(2)
    }).pipe(Effect.provide(breakerLayer)))

  it.effect("a probe that ends without a verdict (refused before upstream) lets the next call probe", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker
      const call = upstream()
      yield* failTimes(3)
      yield* TestClock.adjust(10_000)
      yield* Effect.flip(breaker.guard(Effect.fail("budget refused")))
      expect(yield* breaker.state).toBe("half_open")
      yield* breaker.guard(call.run.pipe(Effect.zipRight(breaker.recordSuccess)))
      expect(call.calls()).toBe(1)
      expect(yield* breaker.state).toBe("closed")
    }).pipe(Effect.provide(breakerLayer)))
})
