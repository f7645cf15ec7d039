import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { isTransient } from "../../../src/domain/LlmError.js"
import { fromBody, fromErrorResponse, fromStatus, fromTransport, unreadable } from "../../../src/llm/ErrorClassifier.js"

const ctx = { model: "openai/gpt-4o-mini", nowMs: 1_764_926_476_000, maxWaitMs: 60_000, scrub: (text: string) => text }

const errorBody = (code: number, message: string, metadata?: unknown) => ({ code, message, metadata })

describe("ErrorClassifier", () => {
  const statuses: ReadonlyArray<[number, string, boolean]> = [
    [400, "UpstreamRejected", false],
    [401, "UpstreamRejected", false],
    [402, "UpstreamRejected", false],
    [403, "UpstreamRejected", false],
    [404, "UpstreamRejected", false],
    [408, "UpstreamTimeout", true],
    [429, "UpstreamRateLimited", true],
    [500, "UpstreamServerError", true],
    [502, "UpstreamServerError", true],
    [503, "UpstreamServerError", true],
    [504, "UpstreamServerError", true]
  ]
  for (const [status, tag, transient] of statuses) {
    it(`HTTP ${status} is ${tag} (${transient ? "transient" : "permanent"})`, () => {
      const error = fromStatus(status, new Headers(), errorBody(status, "nope"), ctx)
      expect([error._tag, isTransient(error), error.status, error.code, error.message]).toEqual([tag, transient, status, String(status), "nope"])
    })
  }

  it("keeps moderation reasons and the provider name of a 403", () => {
    const error = fromStatus(403, undefined, errorBody(403, "flagged", { reasons: ["harassment"], flagged_input: "x", provider_name: "OpenAI" }), ctx)
    expect(error.provider).toBe("OpenAI")
    expect(error.metadata).toMatchObject({ reasons: ["harassment"] })
  })

  it("reads the 429 reset in Unix milliseconds and Retry-After in seconds from the headers", () => {
    const headers = new Headers({
      "X-RateLimit-Limit": "20",
      "X-RateLimit-Remaining": "0",
      "X-RateLimit-Reset": String(ctx.nowMs + 4_000),
      "Retry-After": "3"
    })
    const error = fromStatus(429, headers, errorBody(429, "Rate limit exceeded"), ctx)
    expect(error.rateLimit).toEqual({ limit: 20, remaining: 0, resetAtMs: ctx.nowMs + 4_000, retryAfterMs: 3_000 })
  })

  it("falls back to error.metadata.headers when the 429 headers are missing", () => {
    const body = errorBody(429, "Rate limit exceeded", {
      headers: { "X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": String(ctx.nowMs + 1_000) }
    })
    expect(fromStatus(429, new Headers(), body, ctx).rateLimit).toEqual({ limit: 20, remaining: 0, resetAtMs: ctx.nowMs + 1_000 })
  })

  it("a 429 whose reset is hours away (a daily quota) is permanent", () => {
    const reset = String(ctx.nowMs + 6 * 3_600_000)
    const error = fromStatus(429, new Headers({ "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset }), errorBody(429, "free-models-per-day"), ctx)
    expect([error._tag, isTransient(error)]).toEqual(["UpstreamQuotaExhausted", false])
  })

  it("connection failures and timeouts are transient and keep the network code", () => {
    const reset = fromTransport(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), false, ctx)
    expect([reset._tag, reset.code, isTransient(reset)]).toEqual(["UpstreamNetworkError", "ECONNRESET", true])
    const timeout = fromTransport(Object.assign(new Error("Headers Timeout Error"), { code: "UND_ERR_HEADERS_TIMEOUT" }), false, ctx)
    expect([timeout._tag, isTransient(timeout)]).toEqual(["UpstreamTimeout", true])
  })

  it("an error response is classified by its status and body", () => {
    const error = fromErrorResponse(503, undefined, { error: errorBody(503, "No provider available") }, ctx)
    expect([error._tag, error.message]).toEqual(["UpstreamServerError", "No provider available"])
  })

  it("an unparseable 200 is a transient invalid response", () => {
    const error = unreadable("Unexpected end of JSON input", ctx)
    expect([error._tag, error.status, isTransient(error)]).toEqual(["UpstreamInvalidResponse", 200, true])
  })

  const ok = { id: "gen-1-abc", model: "openai/gpt-4o-mini", provider: "OpenAI" }
  const bodies: ReadonlyArray<[string, unknown, string, boolean]> = [
    ["an error body in a 200", { error: { code: 502, message: "Provider returned error" } }, "UpstreamInvalidResponse", true],
    ["no choices", { ...ok, choices: [] }, "UpstreamInvalidResponse", true],
    ["a choice that finished with error", { ...ok, choices: [{ finish_reason: "error", error: { code: 500, message: "boom" }, message: { content: "" } }] }, "UpstreamInvalidResponse", true],
    ["empty content that stopped normally", { ...ok, choices: [{ finish_reason: "stop", message: { content: "" } }] }, "UpstreamInvalidResponse", true],
    ["content filtered to nothing", { ...ok, choices: [{ finish_reason: "content_filter", message: { content: null } }] }, "UpstreamUnusableAnswer", false],
    ["cut by max_tokens before any text", { ...ok, choices: [{ finish_reason: "length", message: { content: "" } }] }, "UpstreamUnusableAnswer", false]
  ]
  for (const [name, body, tag, transient] of bodies) {
    it(`a 200 with ${name} is ${tag}`, () => {
      const result = fromBody(body, undefined, undefined, ctx)
      expect(Either.isLeft(result)).toBe(true)
      const error = Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
      expect([error._tag, isTransient(error)]).toEqual([tag, transient])
    })
  }

  it("a normal answer passes with its text and finish reason", () => {
    const result = fromBody({ ...ok, choices: [{ finish_reason: "length", message: { content: " Partial summary " } }] }, undefined, undefined, ctx)
    expect(result).toEqual(Either.right({ text: "Partial summary", finishReason: "length" }))
  })
})
