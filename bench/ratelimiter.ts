/**
 * RateLimiter benchmark: `npx tsx bench/ratelimiter.ts [--quick]`.
 * 1. Real time, 50 per second: completion time against the ideal, the busiest sliding second,
 *    in-process and (when Redis answers at 127.0.0.1:6379) shared through Redis.
 * 2. The limiter's own cost per call when no limit binds.
 */
import { ConfigProvider, Context, Effect, Layer, Logger, LogLevel } from "effect"
import { performance } from "node:perf_hooks"
import { pathToFileURL } from "node:url"
import { Config } from "../src/Config.js"
import { RateLimiter } from "../src/llm/RateLimiter.js"
import { rateLimiterUnder } from "../test/support/RateLimiterLayer.js"
import { busiestWindow } from "../test/support/SlidingWindow.js"

const perSecond = 50

const limiter = (vars: Readonly<Record<string, string>>, keyPrefix = `bench:ratelimit:${process.pid}:${Date.now()}`) =>
  Effect.map(
    Layer.build(rateLimiterUnder(keyPrefix).pipe(
      Layer.provide(Config.layer),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)))))
    )),
    Context.get(RateLimiter)
  )

export interface PacingResult {
  readonly mode: string
  readonly requests: number
  readonly completionMs: number
  /** requests / rate: what a perfectly paced limiter with no initial burst takes. */
  readonly idealMs: number
  /** A sliding window lets the first window's allowance go at once: (batches - 1) windows. */
  readonly slidingIdealMs: number
  readonly busiestSecond: number
}

/** `requests` calls of about 5 ms each, all arriving at once, at 50 per second. */
const pacing = (mode: "local" | "redis", requests: number) =>
  Effect.scoped(Effect.gen(function*() {
    const rate = yield* limiter({
      LLM_RATE_LIMIT_REQUESTS: String(perSecond),
      LLM_RATE_LIMIT_WINDOW_MS: "1000",
      LLM_MAX_CONCURRENCY: "64",
      LLM_QUEUE_MAX: String(requests),
      ...(mode === "redis" ? { REDIS_URL: "redis://127.0.0.1:6379" } : {})
    })
    const actual = (yield* rate.stats).mode
    const starts: Array<number> = []
    const began = performance.now()
    yield* Effect.forEach(
      Array.from({ length: requests }),
      () => rate.withPermit(Effect.sync(() => starts.push(performance.now())).pipe(Effect.zipRight(Effect.sleep("5 millis")))),
      { concurrency: "unbounded", discard: true }
    )
    return {
      mode: actual,
      requests,
      completionMs: performance.now() - began,
      idealMs: (requests / perSecond) * 1_000,
      slidingIdealMs: (Math.ceil(requests / perSecond) - 1) * 1_000 + 5,
      busiestSecond: busiestWindow(starts, 1_000)
    } satisfies PacingResult
  }))

export interface OverheadResult {
  readonly calls: number
  readonly sequentialUs: number
  readonly queuedUs: number
}

/** The limiter's own cost: sequential calls on the fast path, and calls queueing for 8 lanes. */
const overhead = (calls: number) =>
  Effect.scoped(Effect.gen(function*() {
    const rate = yield* limiter({
      LLM_RATE_LIMIT_REQUESTS: "1000000",
      LLM_RATE_LIMIT_WINDOW_MS: "1",
      LLM_MAX_CONCURRENCY: "8",
      LLM_QUEUE_MAX: String(calls)
    })
    const time = (effect: Effect.Effect<void>) =>
      Effect.gen(function*() {
        const t0 = performance.now()
        yield* effect
        return performance.now() - t0
      })
    const sequential = (body: (e: Effect.Effect<void>) => Effect.Effect<void, unknown>) =>
      Effect.forEach(Array.from({ length: calls }), () => Effect.ignore(body(Effect.void)), { discard: true })
    // Warm up the JIT on both paths, then keep the best of three (the least disturbed by GC).
    yield* sequential(rate.withPermit)
    const best = (effect: Effect.Effect<void>) =>
      Effect.map(Effect.all([time(effect), time(effect), time(effect)]), (runs) => Math.min(...runs))
    const baseMs = yield* best(sequential((e) => e))
    const limitedMs = yield* best(sequential(rate.withPermit))
    const concurrent = (body: (e: Effect.Effect<void>) => Effect.Effect<void, unknown>) =>
      Effect.forEach(Array.from({ length: calls }), () => Effect.ignore(body(Effect.yieldNow())), {
        concurrency: 1_000,
        discard: true
      })
    const baseConcurrentMs = yield* time(concurrent((e) => e))
    const queuedMs = yield* time(concurrent(rate.withPermit))
    return {
      calls,
      sequentialUs: ((limitedMs - baseMs) * 1_000) / calls,
      queuedUs: ((queuedMs - baseConcurrentMs) * 1_000) / calls
    } satisfies OverheadResult
  }))

const redisAnswers = Effect.scoped(Effect.flatMap(limiter({ REDIS_URL: "redis://127.0.0.1:6379" }), (l) => l.stats)).pipe(
  Effect.map((s) => s.mode === "redis")
)

const table = (pacings: ReadonlyArray<PacingResult>, cost: OverheadResult) => {
  const seconds = (ms: number) => `${(ms / 1_000).toFixed(2)} s`
  const rows = pacings.map((p) =>
    [
      p.mode.padEnd(14),
      String(p.requests).padStart(5),
      seconds(p.completionMs).padStart(8),
      seconds(p.idealMs).padStart(11),
      seconds(p.slidingIdealMs).padStart(13),
      `${((p.slidingIdealMs / p.completionMs) * 100).toFixed(1)} %`.padStart(14),
      `${p.busiestSecond} / ${perSecond}`.padStart(14)
    ].join(" | ")
  )
  return [
    `Pacing at ${perSecond} per second (5 ms calls, all arriving at once)`,
    "mode           | calls | took     | N / rate    | sliding ideal | allowance used | busiest second",
    ...rows,
    "(sliding ideal: the first second's 50 go at once, then 50 per further second; allowance used = sliding ideal / took)",
    "",
    `Own cost per call with no limit binding (${cost.calls} calls, net of the same calls without the limiter):`,
    `  sequential, fast path:           ${cost.sequentialUs.toFixed(2)} us`,
    `  1,000 callers queueing, 8 lanes: ${cost.queuedUs.toFixed(2)} us`
  ].join("\n")
}

export const program = (quick: boolean) =>
  Effect.gen(function*() {
    const requests = quick ? 200 : 1_000
    const pacings: Array<PacingResult> = [yield* pacing("local", requests)]
    if (yield* redisAnswers) pacings.push(yield* pacing("redis", requests))
    const cost = yield* overhead(quick ? 20_000 : 100_000)
    yield* Effect.sync(() => console.log(table(pacings, cost)))
    return { pacings, cost }
  }).pipe(Logger.withMinimumLogLevel(LogLevel.Error))

export const run = (quick: boolean) => Effect.runPromise(program(quick))

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void run(process.argv.includes("--quick"))
}
