import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { TestApp } from "../../support/TestApp.js"
import { App, appLayer, ledgerCount, liveBlock, smallDiff, summarize } from "./support.js"

/** Summarizes `body` and says how many upstream calls and ledger rows it added. */
const summarizeCounting = (app: TestApp, body: unknown) =>
  Effect.gen(function*() {
    const callsBefore = app.emulator.completionCount()
    const rowsBefore = yield* ledgerCount(app)
    const answer = yield* summarize(app, body)
    expect(answer.status).toBe(200)
    expect(answer.body.status).toBe("summarized")
    return {
      answer: answer.body,
      calls: app.emulator.completionCount() - callsBefore,
      rows: (yield* ledgerCount(app)) - rowsBefore
    }
  })

describe("summary cache", () => {
  layer(appLayer({ env: { OPENROUTER_ALLOWED_MODELS: "openai/gpt-4o-mini,openai/gpt-4o" } }), liveBlock)("default lifetime", (it) => {
    it.effect("the same change twice: the second answer comes from the cache, with no upstream call and no ledger row", () =>
      Effect.gen(function*() {
        const app = yield* App
        const body = { diff: smallDiff("We keep your data for 60 days.") }
        const first = yield* summarizeCounting(app, body)
        expect(first).toMatchObject({ calls: 1, rows: 1, answer: { cached: false, attempts: 1 } })
        const second = yield* summarizeCounting(app, body)
        expect(second).toMatchObject({ calls: 0, rows: 0, answer: { cached: true, attempts: 0 } })
        expect(second.answer.summary).toBe(first.answer.summary)
        expect(second.answer.rawDiff).toBe(body.diff)
        expect(second.answer.model).toBe(first.answer.model)
      }))

    it.effect("a different model, temperature or maxTokens is a miss; repeating each is a hit", () =>
      Effect.gen(function*() {
        const app = yield* App
        const diff = smallDiff("We keep your data for 61 days.")
        const variants = [
          { diff },
          { diff, model: "openai/gpt-4o" },
          { diff, temperature: 0.1 },
          { diff, maxTokens: 200 }
        ]
        for (const body of variants) {
          const miss = yield* summarizeCounting(app, body)
          expect(miss, JSON.stringify(body)).toMatchObject({ calls: 1, rows: 1, answer: { cached: false } })
        }
        expect(app.emulator.calls.at(-3)!.body.model).toBe("openai/gpt-4o")
        for (const body of variants) {
          const hit = yield* summarizeCounting(app, body)
          expect(hit, JSON.stringify(body)).toMatchObject({ calls: 0, rows: 0, answer: { cached: true } })
        }
      }))

    it.effect("a different change is a miss", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* summarizeCounting(app, { diff: smallDiff("We keep your data for 62 days.") })
        const other = yield* summarizeCounting(app, { diff: smallDiff("We keep your data for 63 days.") })
        expect(other).toMatchObject({ calls: 1, rows: 1, answer: { cached: false } })
      }))

    it.effect("a fallback is not cached: once the upstream recovers, the same change is summarized", () =>
      Effect.gen(function*() {
        const app = yield* App
        const body = { diff: smallDiff("We keep your data for 64 days.") }
        app.emulator.always({ kind: "status", status: 400 })
        const failed = yield* summarize(app, body)
        expect(failed.body).toMatchObject({ status: "fallback", fallbackReason: "upstream_rejected" })
        app.emulator.always(null)
        const recovered = yield* summarizeCounting(app, body)
        expect(recovered).toMatchObject({ calls: 1, answer: { cached: false, status: "summarized" } })
      }))
  })

  layer(appLayer(), liveBlock)("entries read back", (it) => {
    it.effect("an entry written before fallbackDetail and the structured result existed is still a hit, with those fields null", () =>
      Effect.gen(function*() {
        const app = yield* App
        const body = { diff: smallDiff("We keep your data for 65 days.") }
        const first = yield* summarizeCounting(app, body)
        yield* app.sql`UPDATE summary_cache SET response = response - 'fallbackDetail' - 'structured' - 'grounding' - 'structuredError'`
        const second = yield* summarizeCounting(app, body)
        expect(second).toMatchObject({ calls: 0, answer: { cached: true, fallbackDetail: null, structured: null, grounding: null, structuredError: null } })
        expect(second.answer.summary).toBe(first.answer.summary)
      }))

    it.effect("an entry that does not read as a summary is a miss: the change is summarized again and the entry replaced", () =>
      Effect.gen(function*() {
        const app = yield* App
        const body = { diff: smallDiff("We keep your data for 66 days.") }
        yield* summarizeCounting(app, body)
        yield* app.sql`UPDATE summary_cache SET response = '{"status":"summarized","summary":42}'::jsonb`
        expect(yield* summarizeCounting(app, body)).toMatchObject({ calls: 1, rows: 1, answer: { cached: false } })
        expect(yield* summarizeCounting(app, body)).toMatchObject({ calls: 0, answer: { cached: true } })
      }))
  })

  layer(appLayer({ env: { SUMMARY_CACHE_TTL_MS: "1500" } }), liveBlock)("a short lifetime", (it) => {
    it.effect("an entry older than SUMMARY_CACHE_TTL_MS is not used: the change is summarized again", () =>
      Effect.gen(function*() {
        const app = yield* App
        const body = { diff: smallDiff("We keep your data for 70 days.") }
        expect(yield* summarizeCounting(app, body)).toMatchObject({ calls: 1, answer: { cached: false } })
        expect(yield* summarizeCounting(app, body)).toMatchObject({ calls: 0, answer: { cached: true } })
        yield* Effect.sleep("1700 millis")
        expect(yield* summarizeCounting(app, body)).toMatchObject({ calls: 1, rows: 1, answer: { cached: false } })
      }))
  })
})
