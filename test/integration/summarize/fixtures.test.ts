import { describe, expect, layer } from "@effect/vitest"
import { applyPatch, createTwoFilesPatch } from "diff"
import { BigDecimal, Effect } from "effect"
import { format, sum } from "../../../src/domain/Money.js"
import type { RecordedCall } from "../../support/OpenRouterEmulator.js"
import type { TestApp } from "../../support/TestApp.js"
import { type Fixture, loadFixtures } from "../../unit/summarize/fixtures.js"
import { App, appLayer, type Answer, ledgerCount, ledgerRows, liveBlock, summarize } from "./support.js"

const fixtures = loadFixtures()
// Over the default input budget (12,000 tokens) once condensed: summarized in parts, then combined.
// 36-roblox moves 43 paragraphs between sections, which the model now sees as moves.
const isSplit = (f: Fixture) => ["36-", "37-", "39-"].some((prefix) => f.name.startsWith(prefix))

type Form = "diff" | "texts"
const bodyOf = (f: Fixture, form: Form) => (form === "diff" ? { diff: f.patch } : { before: f.before, after: f.after })

const expectRawDiff = (f: Fixture, form: Form, answer: Answer) => {
  if (form === "diff") expect(answer.body.rawDiff, f.name).toBe(f.patch)
  // A computed diff is only useful if it is the change: applied to the old text it gives the new one.
  else expect(applyPatch(f.before, answer.body.rawDiff), f.name).toBe(f.after)
}

const costOf = (call: RecordedCall) => BigDecimal.unsafeFromString(call.usage!.cost!)

/** The answer's usage is exactly the emulator's, summed over `calls`; each call has its ledger row. */
const expectUsageOf = (app: TestApp, name: string, answer: Answer, calls: ReadonlyArray<RecordedCall>) =>
  Effect.gen(function*() {
    expect(calls.length, name).toBeGreaterThan(0)
    for (const call of calls) expect(call.status, name).toBe(200)
    expect(answer.body.usage, name).toEqual({
      promptTokens: calls.reduce((n, c) => n + c.usage!.prompt_tokens, 0),
      completionTokens: calls.reduce((n, c) => n + c.usage!.completion_tokens, 0),
      totalTokens: calls.reduce((n, c) => n + c.usage!.total_tokens, 0),
      costUsd: calls.length === 1 ? calls[0]!.usage!.cost : format(sum(calls.map(costOf)))
    })
    expect(answer.body.requestId, name).toBe(calls[calls.length - 1]!.generationId)
    const rows = new Map((yield* ledgerRows(app)).map((row) => [row.request_id, row]))
    for (const call of calls) {
      const row = rows.get(call.generationId!)
      expect(row, `${name}: ledger row for ${call.generationId}`).toBeDefined()
      expect(row!.status).toBe("success")
      expect([row!.prompt_tokens, row!.completion_tokens]).toEqual([call.usage!.prompt_tokens, call.usage!.completion_tokens])
      expect(BigDecimal.equals(BigDecimal.unsafeFromString(row!.cost_usd!), costOf(call)), `${name}: ledger cost`).toBe(true)
    }
    return rows
  })

const expectSummarized = (name: string, answer: Answer) => {
  expect(answer.status, name).toBe(200)
  expect(answer.body, name).toMatchObject({
    status: "summarized",
    fallbackReason: null,
    model: "openai/gpt-4o-mini",
    provider: "OpenAI",
    cached: false
  })
  expect(answer.body.summary, name).toMatch(/^Summary: [0-9a-f]{8}\. /)
}

describe("POST /v1/summaries over the 28 real policy changes", () => {
  // The default limit (60 calls a minute) would hold this file's 60-odd calls for most of a minute.
  // Text mode: the free-text path with its combining call (structured mode: structured.test.ts).
  layer(appLayer({ env: { SUMMARY_CACHE_TTL_MS: "0", LLM_RATE_LIMIT_REQUESTS: "10000", SUMMARY_FORMAT: "text" } }), liveBlock)("one service, cache off", (it) => {
    it.effect("every change that fits the input budget summarizes in one call, in both input forms, with the emulator's exact usage", () =>
      Effect.gen(function*() {
        const app = yield* App
        const rowsBefore = yield* ledgerCount(app)
        const callsBefore = app.emulator.completionCount()
        const cases = fixtures.filter((f) => !isSplit(f)).flatMap((f) => (["diff", "texts"] as const).map((form) => ({ f, form })))
        const answers = yield* Effect.forEach(cases, ({ f, form }) => summarize(app, bodyOf(f, form)), { concurrency: 6 })
        const byGeneration = new Map(app.emulator.calls.map((call) => [call.generationId, call]))
        for (const [i, { f, form }] of cases.entries()) {
          const answer = answers[i]!
          const name = `${f.name} (${form})`
          expectSummarized(name, answer)
          expect(answer.body.attempts, name).toBe(1)
          expectRawDiff(f, form, answer)
          yield* expectUsageOf(app, name, answer, [byGeneration.get(answer.body.requestId)!])
        }
        expect(app.emulator.completionCount() - callsBefore).toBe(cases.length)
        expect((yield* ledgerCount(app)) - rowsBefore).toBe(cases.length)
      }))

    it.effect("the huge changes summarize through part calls and a combining call, every one in the ledger and in the usage", () =>
      Effect.gen(function*() {
        const app = yield* App
        for (const f of fixtures.filter(isSplit)) {
          for (const form of ["diff", "texts"] as const) {
            const name = `${f.name} (${form})`
            const from = app.emulator.completionCount()
            const rowsBefore = yield* ledgerCount(app)
            const answer = yield* summarize(app, bodyOf(f, form))
            const calls = app.emulator.calls.slice(from)
            expectSummarized(name, answer)
            expectRawDiff(f, form, answer)
            expect(calls.length, name).toBeGreaterThanOrEqual(3)
            expect(answer.body.attempts, name).toBe(calls.length)
            const rows = yield* expectUsageOf(app, name, answer, calls)
            expect((yield* ledgerCount(app)) - rowsBefore, name).toBe(calls.length)
            const purposes = calls.map((call) => rows.get(call.generationId!)!.purpose)
            expect(purposes.filter((p) => p === "summary-part").length, name).toBe(calls.length - 1)
            expect(purposes.filter((p) => p === "summary-combine").length, name).toBe(1)
          }
        }
      }))

    it.effect("a change of whitespace and invisible characters only is answered without a model call", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { before } = fixtures.find((f) => f.name.startsWith("07-"))!
        // Re-indented lines, a zero-width space, a non-breaking space and a byte-order mark: nothing a reader sees.
        const after = "\uFEFF" + before
          .split("\n")
          .map((line, i) => (i % 7 === 3 && line.trim() !== "" ? `  ${line.replace(" ", "\u00A0")}\u200B ` : line))
          .join("\n")
        const diff = createTwoFilesPatch("old.md", "new.md", before, after)
        const callsBefore = app.emulator.completionCount()
        const rowsBefore = yield* ledgerCount(app)
        for (const body of [{ diff }, { before, after }]) {
          const answer = yield* summarize(app, body)
          expect(answer.status).toBe(200)
          expect(answer.body).toMatchObject({ status: "summarized", fallbackReason: null, usage: null, attempts: 0, cached: false })
          expect(answer.body.summary).toMatch(/formatting/i)
          expect(answer.body.rawDiff).not.toBe("")
          if ("diff" in body) expect(answer.body.rawDiff).toBe(diff)
        }
        expect(app.emulator.completionCount()).toBe(callsBefore)
        expect(yield* ledgerCount(app)).toBe(rowsBefore)
      }))
  })
})
