import { describe, expect, layer } from "@effect/vitest"
import { createTwoFilesPatch } from "diff"
import { BigDecimal, Effect, Either } from "effect"
import { format, sum } from "../../../src/domain/Money.js"
import { fromTexts, fromUnifiedDiff } from "../../../src/summarize/Change.js"
import { condense } from "../../../src/summarize/Condense.js"
import { SCHEMA_INTRO } from "../../../src/summarize/Prompt.js"
import { answerJsonSchema } from "../../../src/summarize/StructuredSummary.js"
import { INVENTED_QUOTE } from "../../support/emulatorStructured.js"
import type { RecordedCall } from "../../support/OpenRouterEmulator.js"
import type { TestApp } from "../../support/TestApp.js"
import { loadFixtures } from "../../unit/summarize/fixtures.js"
import { App, type Answer, appLayer, ledgerCount, ledgerRows, liveBlock, smallDiff, summarize } from "./support.js"

const fixtures = loadFixtures()
// The emulator answers one item per section, more than a real model's 8: room for the largest answer.
const env = { SUMMARY_CACHE_TTL_MS: "0", LLM_RATE_LIMIT_REQUESTS: "10000", OPENROUTER_MAX_TOKENS: "8000" }

/** One request, with the emulator calls and the ledger rows it made. */
const summarizeTraced = (app: TestApp, body: unknown) =>
  Effect.gen(function*() {
    const from = app.emulator.completionCount()
    const rowsBefore = yield* ledgerCount(app)
    const answer = yield* summarize(app, body)
    const rows = (yield* ledgerRows(app)).slice(rowsBefore)
    return { answer, calls: app.emulator.calls.slice(from), rows }
  })

const expectSchemaRequest = (call: RecordedCall) => {
  expect(call.body.response_format).toEqual({
    type: "json_schema",
    json_schema: { name: "policy_change_summary", strict: true, schema: answerJsonSchema() }
  })
  expect(call.body.provider).toEqual({ require_parameters: true })
}

const expectAllGrounded = (name: string, answer: Answer, sections: number) => {
  expect(answer.status, name).toBe(200)
  expect(answer.body, name).toMatchObject({ status: "summarized", fallbackReason: null, structuredError: null })
  const { grounding, structured } = answer.body
  expect(structured, name).not.toBeNull()
  expect(structured.changes.length, name).toBeGreaterThan(0)
  for (const change of structured.changes) expect(change.grounded, `${name}: ${JSON.stringify(change.quotes)}`).toBe(true)
  expect(grounding.grounded, name).toBe(grounding.quotes)
  expect(grounding.quotes, name).toBe(structured.changes.reduce((n: number, c: any) => n + c.quotes.length, 0))
  expect(grounding.sections, name).toBe(sections)
  expect(grounding.covered, name).toBe(sections)
  expect(answer.body.summary.startsWith(structured.headline), name).toBe(true)
  expect(structured.headline.length, name).toBeLessThanOrEqual(140)
}

const usageOf = (calls: ReadonlyArray<RecordedCall>) => ({
  promptTokens: calls.reduce((n, c) => n + c.usage!.prompt_tokens, 0),
  completionTokens: calls.reduce((n, c) => n + c.usage!.completion_tokens, 0),
  totalTokens: calls.reduce((n, c) => n + c.usage!.total_tokens, 0),
  costUsd: format(sum(calls.map((c) => BigDecimal.unsafeFromString(c.usage!.cost!))))
})

const lastMessage = (call: RecordedCall) => call.body.messages[call.body.messages.length - 1]

describe("structured summaries", () => {
  layer(appLayer({ env }), liveBlock)("SUMMARY_FORMAT=structured (the default)", (it) => {
    it.effect("all 28 fixtures, in both input forms: every item grounded, every changed section covered, asked with the strict schema", () =>
      Effect.gen(function*() {
        const app = yield* App
        for (const f of fixtures) {
          for (const form of ["diff", "texts"] as const) {
            const name = `${f.name} (${form})`
            const change = form === "diff" ? Either.getOrThrow(fromUnifiedDiff(f.patch)) : fromTexts(f.before, f.after)
            const { answer, calls, rows } = yield* summarizeTraced(app, form === "diff" ? { diff: f.patch } : { before: f.before, after: f.after })
            expectAllGrounded(name, answer, condense(change).length)
            expect(answer.body.structured.cosmetic, name).toBe(false)
            calls.forEach(expectSchemaRequest)
            expect(answer.body.attempts, name).toBe(calls.length)
            expect(answer.body.usage, name).toEqual(usageOf(calls))
            // No corrective call; a huge change is asked in parts whose items are merged, with no combining call.
            const purposes = rows.map((row) => row.purpose)
            expect(rows.every((row) => row.status === "success"), name).toBe(true)
            expect(purposes, name).toEqual(calls.length === 1 ? ["summary"] : calls.map(() => "summary-part"))
          }
        }
        const split = app.emulator.calls.filter((call) => /This is part \d+ of \d+/.test(call.body.messages[0].content))
        expect(split.length).toBeGreaterThanOrEqual(4)
      }))

    it.effect("a change of whitespace and invisible characters only: cosmetic: true, severity none, with no call", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { before } = fixtures.find((f) => f.name.startsWith("07-"))!
        const after = before.split("\n").map((line, i) => (i % 5 === 2 && line.trim() !== "" ? `  ${line.replace(" ", "\u00A0")}\u200B` : line)).join("\n")
        for (const body of [{ diff: createTwoFilesPatch("old.md", "new.md", before, after) }, { before, after }]) {
          const { answer, calls, rows } = yield* summarizeTraced(app, body)
          expect(answer.body).toMatchObject({
            status: "summarized",
            attempts: 0,
            usage: null,
            structured: { severity: "none", cosmetic: true, changes: [] },
            grounding: null,
            structuredError: null
          })
          expect(answer.body.structured.headline).toBe(answer.body.summary)
          expect(calls).toHaveLength(0)
          expect(rows).toHaveLength(0)
        }
      }))

    it.effect("invalid JSON gets one corrective call carrying the decoding error; both calls are attempts in the ledger", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.script({ kind: "invalid_json" })
        const { answer, calls, rows } = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 11 years.") })
        expectAllGrounded("invalid_json", answer, 1)
        expect(answer.body.attempts).toBe(2)
        expect(rows.map((row) => [row.purpose, row.status, row.request_id])).toEqual([
          ["summary", "success", calls[0]!.generationId],
          ["summary-correction", "success", calls[1]!.generationId]
        ])
        expect(answer.body.usage).toEqual(usageOf(calls))
        const correction = calls[1]!.body.messages
        expect(correction.at(-2)).toMatchObject({ role: "assistant", content: expect.stringMatching(/^Here is the summary/) })
        expect(lastMessage(calls[1]!).content).toMatch(/could not be used: not JSON/)
        expectSchemaRequest(calls[1]!)
      }))

    it.effect("JSON that breaks the schema gets one corrective call naming the field", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.script({ kind: "schema_break" })
        const { answer, calls, rows } = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 12 years.") })
        expectAllGrounded("schema_break", answer, 1)
        expect(answer.body.attempts).toBe(2)
        expect(rows.map((row) => row.purpose)).toEqual(["summary", "summary-correction"])
        expect(lastMessage(calls[1]!).content).toMatch(/does not match the schema: at headline/)
      }))

    it.effect("an answer still unreadable after the correction keeps its text: summarized, structured null, a short structuredError", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.script({ kind: "invalid_json" }, { kind: "invalid_json" })
        const { answer, calls, rows } = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 13 years.") })
        expect(answer.body).toMatchObject({ status: "summarized", fallbackReason: null, structured: null, grounding: null, attempts: 2 })
        expect(answer.body.structuredError).toMatch(/^not JSON: .*; after a correction: not JSON/)
        expect(answer.body.structuredError.length).toBeLessThanOrEqual(300)
        expect(answer.body.summary).toMatch(/^Here is the summary/)
        expect(rows.map((row) => row.purpose)).toEqual(["summary", "summary-correction"])
        expect(answer.body.usage).toEqual(usageOf(calls))
      }))

    it.effect("an invented quote gets one corrective call naming it; the corrected answer is grounded", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.script({ kind: "invented_quote" })
        const { answer, calls, rows } = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 14 years.") })
        expectAllGrounded("invented_quote", answer, 1)
        expect(answer.body.attempts).toBe(2)
        expect(rows.map((row) => row.purpose)).toEqual(["summary", "summary-grounding-correction"])
        expect(lastMessage(calls[1]!).content).toContain(`item 1 (modified): "${INVENTED_QUOTE}"`)
        expect(JSON.stringify(answer.body.structured)).not.toContain(INVENTED_QUOTE)
      }))

    it.effect("a quote still invented after the correction is kept with grounded: false, and the counts show it", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.script({ kind: "invented_quote" }, { kind: "invented_quote" })
        const { answer, rows } = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 15 years.") })
        expect(answer.body).toMatchObject({ status: "summarized", structuredError: null, attempts: 2 })
        expect(answer.body.structured.changes[0]).toMatchObject({ quotes: [INVENTED_QUOTE], grounded: false })
        expect(answer.body.grounding).toEqual({ quotes: 1, grounded: 0, sections: 1, covered: 0 })
        expect(rows.map((row) => row.purpose)).toEqual(["summary", "summary-grounding-correction"])
      }))
  })

  layer(appLayer({ env }), liveBlock)("a server without json_schema", (it) => {
    it.effect("its 400 is detected: the call is made again in json mode, and that model is asked in json mode from then on", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.always({ kind: "refuse_json_schema" })
        const first = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 16 years.") })
        expectAllGrounded("refused", first.answer, 1)
        expect(first.answer.body.attempts).toBe(2)
        expect(first.calls.map((call) => call.status)).toEqual([400, 200])
        expectSchemaRequest(first.calls[0]!)
        expect(first.calls[1]!.body.response_format).toEqual({ type: "json_object" })
        expect(first.calls[1]!.body.provider).toBeUndefined()
        expect(first.calls[1]!.body.messages[0].content).toContain(SCHEMA_INTRO)
        expect(first.rows.map((row) => [row.purpose, row.status, row.error_code])).toEqual([
          ["summary", "error", "400"],
          ["summary", "success", null]
        ])
        expect(first.answer.body.usage).toEqual(usageOf(first.calls.slice(1)))

        const second = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 17 years.") })
        expectAllGrounded("after the refusal", second.answer, 1)
        expect(second.calls.map((call) => call.body.response_format)).toEqual([{ type: "json_object" }])
        expect(second.answer.body.attempts).toBe(1)
      }))
  })

  layer(appLayer({ env: { ...env, SUMMARY_FORMAT: "json" } }), liveBlock)("SUMMARY_FORMAT=json", (it) => {
    it.effect("asks for json_object with the schema in the prompt, and grounds the answer the same way", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { answer, calls } = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 18 years.") })
        expectAllGrounded("json", answer, 1)
        expect(calls).toHaveLength(1)
        expect(calls[0]!.body.response_format).toEqual({ type: "json_object" })
        // The schema is in the prompt and the answer is checked: any endpoint may serve it.
        expect(calls[0]!.body.provider).toBeUndefined()
        const system: string = calls[0]!.body.messages[0].content
        expect(JSON.parse(system.split("\n")[system.split("\n").indexOf(SCHEMA_INTRO) + 1]!)).toEqual(answerJsonSchema())
      }))
  })

  layer(appLayer({ env: { ...env, SUMMARY_FORMAT: "text" } }), liveBlock)("SUMMARY_FORMAT=text", (it) => {
    it.effect("asks for free text, as before: no response_format, structured null", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { answer, calls } = yield* summarizeTraced(app, { diff: smallDiff("We keep your data for 19 years.") })
        expect(answer.body).toMatchObject({ status: "summarized", structured: null, grounding: null, structuredError: null, attempts: 1 })
        expect(answer.body.summary).toMatch(/^Summary: [0-9a-f]{8}\. /)
        expect(calls[0]!.body.response_format).toBeUndefined()
        expect(calls[0]!.body.provider).toBeUndefined()
      }))
  })
})
