import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { buildConnector, Pool } from "undici"
import { CompletionProvider } from "../../../src/llm/CompletionProvider.js"
import { OpenRouter } from "../../../src/llm/OpenRouter.js"
import type { Config } from "../../../src/Config.js"
import { RateLimiter } from "../../../src/llm/RateLimiter.js"
import { Scrubber } from "../../../src/llm/Scrubber.js"
import { reportingWrites, UpstreamPool } from "../../../src/llm/UpstreamPool.js"
import { makeEmulator } from "../../support/OpenRouterEmulator.js"
import { rateLimiterUnder } from "../../support/RateLimiterLayer.js"
import { redisSkipReason, redisTestUrl } from "../../support/Redis.js"
import { busiestWindow } from "../../support/SlidingWindow.js"
import { providerRequest as request } from "../../support/ProviderRequest.js"
import { configLayer } from "../../support/TestDatabase.js"


/** Each new connection takes this long to open, as a TLS handshake to a distant upstream does. */
const handshakeMs = 300

/**
 * Two calls at a limit of 1 a second over one connection that takes `handshakeMs` to open: the
 * first opens it, the second waits for the window, then reuses it at once. Answers the emulator's
 * arrival times.
 */
const twoCalls = (limiter: Layer.Layer<RateLimiter, never, Config>, env: Readonly<Record<string, string>>) =>
  Effect.gen(function*() {
    const emulator = yield* makeEmulator()
    const url = new URL(emulator.baseUrl)
    const connect = buildConnector({})
    const slowConnect: buildConnector.connector = (options, callback) => {
      setTimeout(() => connect(options, callback), handshakeMs)
    }
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => reportingWrites(new Pool(url.origin, { connections: 1, connect: slowConnect }))),
      (pool) => Effect.promise(() => pool.close())
    )
    const layer = Layer.mergeAll(OpenRouter, limiter).pipe(
      Layer.provide([Scrubber.layer, Layer.succeed(UpstreamPool, { pool, basePath: url.pathname })]),
      Layer.provide(configLayer({
        OPENROUTER_API_KEY: "sk-or-v1-emulator",
        OPENROUTER_BASE_URL: emulator.baseUrl,
        LLM_RATE_LIMIT_REQUESTS: "1",
        LLM_RATE_LIMIT_WINDOW_MS: "1000",
        ...env
      }))
    )
    yield* Effect.gen(function*() {
      const permits = yield* RateLimiter
      const provider = yield* CompletionProvider
      yield* Effect.all([permits.withPermit(provider.complete(request)), permits.withPermit(provider.complete(request))], { concurrency: 2 })
    }).pipe(Effect.provide(layer))
    return emulator.calls.map((c) => c.at)
  })

describe("the limiter counts a start from when the request reaches the wire", () => {
  it.scopedLive("in one process: a call that waited for its connection does not let the next window's call land less than a window after it upstream", () =>
    Effect.gen(function*() {
      const arrivals = yield* twoCalls(RateLimiter.layer, {})
      expect(arrivals).toHaveLength(2)
      // Counted from its permit instead, the first would let the second go 300 ms early: 2 in one second upstream.
      expect(busiestWindow(arrivals, 1000)).toBe(1)
    }), { timeout: 10_000 })

  describe.skipIf(redisSkipReason !== null)("in a window shared through Redis", () => {
    it.scopedLive("the same", () =>
      Effect.gen(function*() {
        const arrivals = yield* twoCalls(rateLimiterUnder(`test:wire:${Date.now()}`), { REDIS_URL: redisTestUrl })
        expect(arrivals).toHaveLength(2)
        expect(busiestWindow(arrivals, 1000)).toBe(1)
      }), { timeout: 10_000 })
  })
})
