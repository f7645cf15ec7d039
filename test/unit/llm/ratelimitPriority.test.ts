import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import type { Priority } from "../../../src/domain/Completion.js"
import { guardMs, RateLimiter } from "../../../src/llm/RateLimiter.js"
import { advance, limiterLayer, settle } from "./ratelimitSupport.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

interface Start {
  readonly owner: string
  readonly at: number
}

/** `n` permits asked at once by `owner` at `priority`, each noting its start and taking 50 virtual ms. */
const burst = (owner: string, n: number, starts: Array<Start>, priority?: Priority) =>
  Effect.flatMap(RateLimiter, (limiter) =>
    Effect.fork(Effect.forEach(
      range(n),
      () =>
        limiter.withPermit(
          Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => starts.push({ owner, at }))).pipe(Effect.zipRight(Effect.sleep(50))),
          owner,
          priority
        ),
      { concurrency: "unbounded", discard: true }
    )))

const owners = (starts: ReadonlyArray<Start>) => starts.map((s) => s.owner).join(",")

describe("RateLimiter priority (issue 11 §3, virtual time)", () => {
  it.effect("a background waiter (a summary job) goes only when no interactive waiter waits, whatever came first", () =>
    Effect.gen(function*() {
      const starts: Array<Start> = []
      // One lane: the job's first call takes it, its other 5 wait.
      const job = yield* burst("job", 6, starts, "background")
      yield* settle
      const a = yield* burst("a", 2, starts)
      yield* settle
      const b = yield* burst("b", 1, starts, "interactive")
      yield* settle
      yield* advance(1_000)
      yield* Fiber.joinAll([job, a, b])
      // The interactive ones, arrived later, take turns between them and all go before the job's remaining 5.
      expect(owners(starts)).toBe("job,a,b,a,job,job,job,job,job")
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "100", LLM_RATE_LIMIT_WINDOW_MS: "1000", LLM_MAX_CONCURRENCY: "1" }))))

  it.effect("an interactive call arriving while background ones wait for the window starts at the next free slot, ahead of them", () =>
    Effect.gen(function*() {
      const starts: Array<Start> = []
      // 2 per second: the jobs take this second's 2 slots, 3 more wait for the window.
      const jobs = yield* burst("job", 5, starts, "background")
      yield* settle
      yield* advance(300)
      const user = yield* burst("user", 1, starts)
      yield* settle
      yield* advance(3_000)
      yield* Fiber.joinAll([jobs, user])
      expect(owners(starts)).toBe("job,job,user,job,job,job")
      // The user waited for the window only (the first start leaves it at 1 s and the margin), not behind the jobs.
      expect(starts[2]!.at).toBe(1_000 + guardMs(1_000, 20))
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "2", LLM_RATE_LIMIT_WINDOW_MS: "1000", LLM_MAX_CONCURRENCY: "4" }))))

  it.effect("background owners still take turns among themselves", () =>
    Effect.gen(function*() {
      const starts: Array<Start> = []
      const first = yield* burst("j1", 3, starts, "background")
      yield* settle
      const second = yield* burst("j2", 2, starts, "background")
      yield* settle
      yield* advance(1_000)
      yield* Fiber.joinAll([first, second])
      expect(owners(starts)).toBe("j1,j1,j2,j1,j2")
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "100", LLM_RATE_LIMIT_WINDOW_MS: "1000", LLM_MAX_CONCURRENCY: "1" }))))

  it.effect("a queue full of background waiters refuses the next background call, not an interactive one", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const starts: Array<Start> = []
      // One lane, taken by the first job call; the other 3 fill the queue.
      const jobs = yield* burst("job", 4, starts, "background")
      yield* settle
      expect(yield* limiter.stats).toMatchObject({ queueDepth: 3, inFlight: 1 })
      const refused = yield* Effect.flip(limiter.withPermit(Effect.void, "job", "background"))
      expect(refused).toMatchObject({ _tag: "RateLimitQueueFull", queueDepth: 3 })
      const user = yield* burst("user", 1, starts)
      yield* settle
      yield* advance(1_000)
      yield* Fiber.joinAll([jobs, user])
      expect(owners(starts)).toBe("job,user,job,job,job")
    }).pipe(Effect.provide(limiterLayer({ LLM_RATE_LIMIT_REQUESTS: "100", LLM_MAX_CONCURRENCY: "1", LLM_QUEUE_MAX: "3" }))))
})
