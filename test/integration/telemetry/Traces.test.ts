import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { OtlpReceiver, OtlpSpan } from "../../support/OtlpReceiver.js"
import { makeOtlpReceiver } from "../../support/OtlpReceiver.js"
import { makeTestApp, TEST_API_KEY } from "../../support/TestApp.js"

const TOKEN = "trace-token-5f2a91c7"
const OTLP_SECRET = "otlp-header-secret-88c1"
// Words that appear only in the document, to find any attribute that copied it.
const BEFORE = "Quillwort retains your marmalade ledgers for thirty days."
const AFTER = "Quillwort retains your marmalade ledgers for ninety days and shares them with zephyr partners."

const valueOf = (value: Record<string, unknown>): unknown => Object.values(value)[0]
const attribute = (span: OtlpSpan, key: string) => {
  const found = span.attributes.find((a) => a.key === key)
  return found === undefined ? undefined : valueOf(found.value)
}

/** One summary through the real service, traced to the receiver; the app is closed (and its spans flushed) before it returns. */
const summarizeOnce = (receiver: OtlpReceiver, protocol: "http/json" | "http/protobuf") =>
  Effect.scoped(Effect.gen(function*() {
    const app = yield* makeTestApp({
      env: {
        API_TOKEN: TOKEN,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${OTLP_SECRET}`,
        OTEL_SERVICE_NAME: "summarizer-under-test",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test"
      }
    })
    // The first attempt fails with a 502 whose message quotes the Authorization header back; the retry answers.
    app.emulator.script({ kind: "status", status: 502, echoAuthorization: true })
    const response = yield* Effect.promise(() => app.post("/v1/summaries", { before: BEFORE, after: AFTER }, { authorization: `Bearer ${TOKEN}` }))
    const body = yield* Effect.promise(() => response.json() as Promise<any>)
    const rows = yield* app.sql<{ readonly id: string }>`SELECT id FROM llm_api_usage ORDER BY attempt`
    return { status: response.status, body, rowIds: rows.map((r) => r.id) }
  }))

describe("traces", () => {
  it.live("one summary is one trace: request, summarize, each attempt with its limiter wait and ledger commit, nothing secret", () =>
    Effect.scoped(Effect.gen(function*() {
      const receiver = yield* makeOtlpReceiver
      const { status, body, rowIds } = yield* summarizeOnce(receiver, "http/json")
      expect(status).toBe(200)
      expect(body.status).toBe("summarized")
      expect(body.attempts).toBe(2)

      expect(receiver.exports.every((e) => e.path === "/v1/traces" && e.headers["authorization"] === `Bearer ${OTLP_SECRET}`)).toBe(true)
      const spans = receiver.spans()
      const request = spans.find((s) => s.name === "http.request" && attribute(s, "url.path") === "/v1/summaries")
      expect(request).toBeDefined()
      const trace = spans.filter((s) => s.traceId === request!.traceId)
      const named = (name: string) => trace.filter((s) => s.name === name)

      const [summarize] = named("summarize")
      expect(summarize!.parentSpanId).toBe(request!.spanId)
      expect(attribute(summarize!, "summary.attempts")).toBe(2)
      expect(attribute(summarize!, "summary.status")).toBe("summarized")

      const attempts = named("llm.attempt")
      expect(attempts.map((s) => [s.parentSpanId, attribute(s, "llm.attempt.number")]).sort()).toEqual([[summarize!.spanId, 1], [summarize!.spanId, 2]])
      const inAttempt = (name: string) => named(name).map((s) => attempts.find((a) => a.spanId === s.parentSpanId) === undefined ? "elsewhere" : "in attempt")
      expect(inAttempt("limiter.wait")).toEqual(["in attempt", "in attempt"])
      expect(inAttempt("ledger.commit")).toEqual(["in attempt", "in attempt"])
      expect(named("ledger.commit").map((s) => attribute(s, "ledger.row_id")).sort()).toEqual([...rowIds].sort())

      // A failed attempt says what failed by its tag alone: upstream's message can quote the prompt.
      const messages = attempts.flatMap((s) => s.events.flatMap((e) => e.attributes.filter((a) => a.key === "exception.message")))
      expect(messages.map((a) => valueOf(a.value))).toEqual(["UpstreamServerError"])
      const texts = spans.flatMap((s) => [
        ...s.resource, ...s.attributes, ...s.events.flatMap((e) => e.attributes)
      ].map((a) => `${a.key}=${JSON.stringify(a.value)}`))
      expect(texts).toContain(`service.name={"stringValue":"summarizer-under-test"}`)
      expect(texts).toContain(`deployment.environment={"stringValue":"test"}`)
      for (const secret of [TEST_API_KEY, TOKEN, OTLP_SECRET, "marmalade", "zephyr", "Quillwort"]) {
        expect(texts.filter((t) => t.includes(secret))).toEqual([])
      }
    })))

  it.live("the default protocol is OTLP/protobuf, and it carries the same spans", () =>
    Effect.scoped(Effect.gen(function*() {
      const receiver = yield* makeOtlpReceiver
      const { status } = yield* summarizeOnce(receiver, "http/protobuf")
      expect(status).toBe(200)
      const bytes = Buffer.concat(receiver.exports.map((e) => e.body))
      expect(receiver.exports.map((e) => e.contentType)).toContain("application/x-protobuf")
      for (const name of ["http.request", "summarize", "llm.attempt", "limiter.wait", "ledger.commit"]) expect(bytes.includes(name)).toBe(true)
      for (const secret of [TEST_API_KEY, TOKEN, "marmalade"]) expect(bytes.includes(secret)).toBe(false)
    })))
})
