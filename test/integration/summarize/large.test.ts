import { describe, expect, layer } from "@effect/vitest"
import { BigDecimal, Effect } from "effect"
import { format, sum } from "../../../src/domain/Money.js"
import { fixture } from "../../unit/summarize/fixtures.js"
import { App, appLayer, ledgerRows, liveBlock, summarize } from "./support.js"

const BUDGET = 4000
const userText = (body: any): string => body.messages.find((m: any) => m.role === "user").content

describe("large changes", () => {
  // Text mode: parts, then a combining call (structured parts are merged without one: structured.test.ts).
  layer(appLayer({ env: { SUMMARY_INPUT_BUDGET_TOKENS: String(BUDGET), LLM_RATE_LIMIT_REQUESTS: "10000", SUMMARY_FORMAT: "text" } }), liveBlock)("split", (it) => {
    for (const name of ["37-quora", "39-instacart", "40-academia-edu"]) {
      it.effect(`${name}: parts within the input budget, then one combining call; every call in the ledger and in the usage`, () =>
        Effect.gen(function*() {
          const app = yield* App
          const f = fixture(name)
          const from = app.emulator.completionCount()
          const answer = yield* summarize(app, { diff: f.patch })
          const calls = app.emulator.calls.slice(from)
          expect(answer.status).toBe(200)
          expect(answer.body).toMatchObject({ status: "summarized", rawDiff: f.patch, attempts: calls.length })
          expect(calls.length).toBeGreaterThanOrEqual(3)
          for (const call of calls) {
            expect(call.status).toBe(200)
            expect(call.usage!.prompt_tokens).toBeLessThanOrEqual(BUDGET)
          }
          // Each part says which part it is (parts run side by side, so they arrive in any order);
          // the last call combines the parts' summaries.
          const parts = calls.slice(0, -1)
          const numbers = parts.map((call) => Number(/part (\d+) of (\d+)/.exec(call.body.messages[0].content)?.[1]))
          expect(numbers.sort((a, b) => a - b)).toEqual(parts.map((_, i) => i + 1))
          parts.forEach((call) => expect(call.body.messages[0].content).toContain(` of ${parts.length}`))
          expect(userText(calls.at(-1)!.body)).toContain(`Part ${parts.length} of ${parts.length}:`)
          expect(answer.body.usage).toEqual({
            promptTokens: calls.reduce((n, c) => n + c.usage!.prompt_tokens, 0),
            completionTokens: calls.reduce((n, c) => n + c.usage!.completion_tokens, 0),
            totalTokens: calls.reduce((n, c) => n + c.usage!.total_tokens, 0),
            costUsd: format(sum(calls.map((c) => BigDecimal.unsafeFromString(c.usage!.cost!))))
          })
          const rows = new Map((yield* ledgerRows(app)).map((row) => [row.request_id, row]))
          const purposes = calls.map((call) => rows.get(call.generationId!)?.purpose)
          expect(purposes).toEqual([...parts.map(() => "summary-part"), "summary-combine"])
        }))
    }
  })

  layer(appLayer({ env: { SUMMARY_INPUT_BUDGET_TOKENS: String(BUDGET), SUMMARY_LARGE_CHANGE: "truncate" } }), liveBlock)("truncate", (it) => {
    it.effect("SUMMARY_LARGE_CHANGE=truncate: one call within the budget whose prompt says what was left out", () =>
      Effect.gen(function*() {
        const app = yield* App
        const f = fixture("37-quora")
        const answer = yield* summarize(app, { diff: f.patch })
        expect(answer.status).toBe(200)
        expect(answer.body).toMatchObject({ status: "summarized", rawDiff: f.patch, attempts: 1 })
        expect(app.emulator.completionCount()).toBe(1)
        const call = app.emulator.calls[0]!
        expect(call.usage!.prompt_tokens).toBeLessThanOrEqual(BUDGET)
        expect(userText(call.body)).toMatch(/too long to show whole: \d+ more characters/)
        expect(answer.body.usage.costUsd).toBe(call.usage!.cost)
        const rows = yield* ledgerRows(app)
        expect(rows.map((r) => [r.request_id, r.purpose])).toEqual([[call.generationId, "summary"]])
      }))
  })
})
