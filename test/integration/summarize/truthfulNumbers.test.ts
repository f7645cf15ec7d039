import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { fixture } from "../../unit/summarize/fixtures.js"
import { App, appLayer, ledgerRows, liveBlock, smallDiff, summarize } from "./support.js"

/** Issue 17 §3: `attempts` is the upstream calls made for this request; `usage` what this request spent. */
describe("truthful numbers on a summary", () => {
  layer(appLayer({ env: { SUMMARY_INPUT_BUDGET_TOKENS: "4000", LLM_RATE_LIMIT_REQUESTS: "10000" } }), liveBlock)("attempts and cache", (it) => {
    it.effect("a cached answer says cached: true and reports nothing spent for this request, not the original cost again", () =>
      Effect.gen(function*() {
        const app = yield* App
        const body = { diff: smallDiff("We keep your data for 70 days.") }
        const first = (yield* summarize(app, body)).body
        expect(first).toMatchObject({ status: "summarized", cached: false, attempts: 1 })
        const [row] = yield* ledgerRows(app)
        expect(first.usage.costUsd).toBe(row!.cost_usd)
        expect(first.usage.totalTokens).toBeGreaterThan(0)
        const again = (yield* summarize(app, body)).body
        expect(again).toMatchObject({
          status: "summarized",
          cached: true,
          attempts: 0,
          summary: first.summary,
          usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0, costUsd: "0" },
          fallbackDetail: null
        })
        expect(yield* ledgerRows(app)).toHaveLength(1)
      }))

    it.effect("attempts counts retries: a 500 then a success is 2", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.reset()
        app.emulator.script({ kind: "status", status: 500 })
        const answer = (yield* summarize(app, { diff: smallDiff("We keep your data for 71 days.") })).body
        expect(answer).toMatchObject({ status: "summarized", attempts: 2 })
        expect(app.emulator.completionCount()).toBe(2)
      }))

    it.effect("attempts of a split summary counts every part, the combining call and a retry among them", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.reset()
        app.emulator.script({ kind: "status", status: 502 })
        const answer = (yield* summarize(app, { diff: fixture("37-quora").patch })).body
        expect(answer.status).toBe("summarized")
        const calls = app.emulator.completionCount()
        expect(calls).toBeGreaterThanOrEqual(4)
        expect(answer.attempts).toBe(calls)
      }))
  })
})

describe("the contract shows the fields", () => {
  layer(appLayer(), liveBlock)("/openapi.json", (it) => {
    it.effect("describes fallbackDetail, attempts and cached on the summary", () =>
      Effect.gen(function*() {
        const app = yield* App
        const spec = JSON.parse(yield* Effect.promise(() => app.get("/openapi.json").then((r) => r.text())))
        const text = JSON.stringify(spec)
        expect(text).toContain("fallbackDetail")
        expect(text).toContain("OpenRouter rejected the API key (401)")
        expect(text).toContain("Upstream calls made for this request")
        expect(text).toContain("nothing was spent for this one")
      }))
  })
})
