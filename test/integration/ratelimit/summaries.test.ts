import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { App, appLayer, ledgerCount, liveBlock, smallDiff, summarize } from "../summarize/support.js"
import { busiestWindow } from "../../support/SlidingWindow.js"

const LIMIT = 5
const WINDOW_MS = 1000
/**
 * The emulator stamps a call when it arrives, after the limiter let it start: 2 ms for a warm
 * connection, about 20 ms for the first one, over 100 ms when CI runs test files side by side
 * (measured). Windows are shortened by this much; a fixed window or a token bucket still shows,
 * since either lets 6 or more calls through within a few milliseconds of a window edge.
 */
const JITTER_MS = 150

describe("the upstream rate limit, through POST /v1/summaries", () => {
  layer(
    appLayer({
      env: {
        LLM_RATE_LIMIT_REQUESTS: String(LIMIT),
        LLM_RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
        SUMMARY_CACHE_TTL_MS: "0"
      }
    }),
    liveBlock
  )("5 calls a second", (it) => {
    it.effect("20 concurrent summaries all succeed, and the upstream never sees more than 5 in any sliding second", () =>
      Effect.gen(function*() {
        const app = yield* App
        const started = Date.now()
        const answers = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => summarize(app, { diff: smallDiff(`We keep your data for ${i + 100} days.`) }),
          { concurrency: "unbounded" }
        )
        const elapsed = Date.now() - started
        for (const answer of answers) {
          expect(answer.status).toBe(200)
          expect(answer.body).toMatchObject({ status: "summarized", attempts: 1 })
        }
        const arrivals = app.emulator.calls.map((call) => call.at)
        expect(arrivals).toHaveLength(20)
        expect(busiestWindow(arrivals, WINDOW_MS - JITTER_MS)).toBeLessThanOrEqual(LIMIT)
        // 20 calls at 5 a second: the 16th cannot start before 3 windows have passed.
        expect(elapsed).toBeGreaterThanOrEqual(3 * WINDOW_MS)
        // ...and the limiter uses what it is allowed: no idle second along the way.
        expect(elapsed).toBeLessThan(6 * WINDOW_MS)
        expect(yield* ledgerCount(app)).toBe(20)
      }))
  })
})
