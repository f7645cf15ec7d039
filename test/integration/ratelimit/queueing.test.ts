import { describe, expect, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { App, appLayer, liveBlock, smallDiff, summarize } from "../summarize/support.js"

/** A change of `n` edited paragraphs, far over a 256-token input budget: it is split into many parts. */
const bigChange = (n: number) => {
  const paragraphs = Array.from({ length: n }, (_, i) => `Section ${i}: we keep records of type ${i} for ${i + 10} days and then delete them.`)
  return {
    before: paragraphs.join("\n\n"),
    after: paragraphs.map((p, i) => p.replace(`${i + 10} days`, `${i + 400} days, and share them with partners`)).join("\n\n")
  }
}

const userText = (body: any): string => body.messages.find((m: any) => m.role === "user").content

describe("fair queueing through POST /v1/summaries (issue 10 §3)", () => {
  layer(
    appLayer({
      env: {
        LLM_RATE_LIMIT_REQUESTS: "2",
        LLM_RATE_LIMIT_WINDOW_MS: "1000",
        SUMMARY_INPUT_BUDGET_TOKENS: "256",
        SUMMARY_CACHE_TTL_MS: "0"
      }
    }),
    liveBlock
  )("2 calls a second", (it) => {
    it.effect("a one-line summary asked while a many-part summary waits for the limit goes next but one, not after its queued parts", () =>
      Effect.gen(function*() {
        const app = yield* App
        const big = yield* Effect.fork(summarize(app, bigChange(60)))
        // The big summary's first window is spent and its next parts are queued.
        while (app.emulator.completionCount() < 2) yield* Effect.sleep("20 millis")
        yield* Effect.sleep("150 millis")
        const submitted = app.emulator.completionCount()
        const small = yield* summarize(app, { diff: smallDiff("Zanzibar office keeps your data forever.") })
        expect(small.body).toMatchObject({ status: "summarized", attempts: 1 })
        const smallAt = app.emulator.calls.findIndex((c) => c.body !== undefined && userText(c.body).includes("Zanzibar"))
        // First in, first out, every big part queued before it goes first (2 here; as many as the
        // big summary keeps waiting). Round-robin: at most the one part whose turn it was.
        expect(smallAt - submitted).toBeLessThanOrEqual(1)
        const answer = yield* Fiber.join(big)
        expect(answer.body).toMatchObject({ status: "summarized" })
        expect(answer.body.attempts).toBeGreaterThanOrEqual(6)
      }), { timeout: 90_000 })
  })

  layer(
    appLayer({ env: { LLM_QUEUE_MAX: "3", LLM_MAX_CONCURRENCY: "1", SUMMARY_CACHE_TTL_MS: "0" }, emulator: { latencyMs: 800 } }),
    liveBlock
  )("a full queue (issue 10 §7)", (it) => {
    it.effect("the 429's Retry-After is the limiter's estimate of the drain, not 1 s", () =>
      Effect.gen(function*() {
        const app = yield* App
        const answers = yield* Effect.forEach(
          Array.from({ length: 8 }, (_, n) => n),
          (n) => summarize(app, { diff: smallDiff(`We keep your data for ${n} years.`) }),
          { concurrency: "unbounded" }
        )
        const limited = answers.filter((a) => a.status === 429)
        const admitted = answers.filter((a) => a.status === 200)
        expect(admitted).toHaveLength(4)
        expect(limited).toHaveLength(4)
        // 1 call in flight and 3 queued on one lane at 0.8 s each: about 3.2 s before a place frees.
        for (const answer of limited) {
          const seconds = Number(answer.headers.get("retry-after"))
          expect(seconds).toBeGreaterThanOrEqual(3)
          expect(answer.body.retryAfterSeconds).toBe(seconds)
        }
      }))
  })
})
