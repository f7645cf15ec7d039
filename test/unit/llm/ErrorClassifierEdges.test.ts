import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { UpstreamError } from "../../../src/domain/LlmError.js"
import { failure, fromBody, fromStatus, fromTransport, rateLimitInfo, waitMs } from "../../../src/llm/ErrorClassifier.js"

const nowMs = 1_764_926_476_000
const ctx = { model: "openai/gpt-4o-mini", nowMs, maxWaitMs: 60_000, scrub: (text: string) => text }

const left = (result: Either.Either<unknown, UpstreamError>): UpstreamError => {
  if (Either.isRight(result)) throw new Error("expected a failure")
  return result.left
}

/** A connection failure whose network code sits `depth` causes deep. */
const nested = (depth: number, code: unknown = "ECONNREFUSED"): unknown =>
  depth === 0 ? { code } : { message: `level ${depth}`, cause: nested(depth - 1, code) }

describe("ErrorClassifier: how long the provider asks us to wait", () => {
  it("reads X-RateLimit-Reset in Unix seconds as well as in milliseconds", () => {
    const seconds = Math.floor(nowMs / 1000) + 30
    expect(rateLimitInfo(new Headers({ "X-RateLimit-Reset": String(seconds) }), undefined, nowMs)).toEqual({ resetAtMs: seconds * 1000 })
    expect(rateLimitInfo(new Headers({ "X-RateLimit-Reset": String(nowMs + 30_000) }), undefined, nowMs)).toEqual({ resetAtMs: nowMs + 30_000 })
    // The first millisecond timestamp (September 2001) is not taken for seconds, the last second timestamp is.
    expect(rateLimitInfo(new Headers({ "X-RateLimit-Reset": "1000000000000" }), undefined, nowMs)).toEqual({ resetAtMs: 1e12 })
    expect(rateLimitInfo(new Headers({ "X-RateLimit-Reset": "999999999999" }), undefined, nowMs)).toEqual({ resetAtMs: 999_999_999_999_000 })
  })

  it("a 429 with a reset in Unix seconds 30 s away is waited for, not mistaken for a quota", () => {
    const headers = new Headers({ "X-RateLimit-Reset": String(Math.floor(nowMs / 1000) + 30) })
    const error = fromStatus(429, headers, { code: 429, message: "slow down" }, ctx)
    expect(error._tag).toBe("UpstreamRateLimited")
    expect(waitMs(error.rateLimit, nowMs)).toBe(30_000)
  })

  it("reads Retry-After as seconds or as an HTTP date, and never as a negative wait", () => {
    const retryAfter = (value: string) => rateLimitInfo(new Headers({ "Retry-After": value }), undefined, nowMs)?.retryAfterMs
    expect(retryAfter("2.5")).toBe(2_500)
    expect(retryAfter("0")).toBe(0)
    expect(retryAfter("-5")).toBe(0)
    expect(retryAfter(new Date(nowMs + 45_000).toUTCString())).toBe(45_000)
    expect(retryAfter(new Date(nowMs - 45_000).toUTCString())).toBe(0)
    expect(retryAfter("soon")).toBeUndefined()
    expect(retryAfter("   ")).toBeUndefined()
  })

  it("a 429 whose Retry-After date is an hour away is a quota; one a few seconds away is retried", () => {
    const at = (ms: number) => new Headers({ "Retry-After": new Date(nowMs + ms).toUTCString() })
    expect(fromStatus(429, at(3_600_000), {}, ctx)._tag).toBe("UpstreamQuotaExhausted")
    expect(fromStatus(429, at(5_000), {}, ctx)._tag).toBe("UpstreamRateLimited")
  })

  it("waits for the later of Retry-After and the reset, and not at all for a reset already past", () => {
    expect(waitMs(undefined, nowMs)).toBeUndefined()
    expect(waitMs({}, nowMs)).toBeUndefined()
    expect(waitMs({ limit: 20 }, nowMs)).toBeUndefined()
    expect(waitMs({ resetAtMs: nowMs + 4_000 }, nowMs)).toBe(4_000)
    expect(waitMs({ resetAtMs: nowMs - 4_000 }, nowMs)).toBe(0)
    expect(waitMs({ retryAfterMs: 3_000 }, nowMs)).toBe(3_000)
    expect(waitMs({ retryAfterMs: 3_000, resetAtMs: nowMs + 4_000 }, nowMs)).toBe(4_000)
    expect(waitMs({ retryAfterMs: 5_000, resetAtMs: nowMs + 4_000 }, nowMs)).toBe(5_000)
    expect(waitMs({ retryAfterMs: 5_000, resetAtMs: nowMs - 4_000 }, nowMs)).toBe(5_000)
  })

  it("a 429 that asks for exactly the longest wait we honour is retried; one millisecond more is a quota", () => {
    const reset = (ms: number) => new Headers({ "X-RateLimit-Reset": String(nowMs + ms) })
    expect(fromStatus(429, reset(60_000), {}, ctx)._tag).toBe("UpstreamRateLimited")
    expect(fromStatus(429, reset(60_001), {}, ctx)._tag).toBe("UpstreamQuotaExhausted")
    expect(fromStatus(429, undefined, {}, ctx)._tag).toBe("UpstreamRateLimited")
  })

  it("takes the rate-limit facts from the headers first, else from the error body under either spelling", () => {
    const body = { headers: { "X-RateLimit-Limit": "20", "x-ratelimit-remaining": "3", "X-RateLimit-Reset": 1_800_000_000_000 } }
    expect(rateLimitInfo(new Headers({ "X-RateLimit-Limit": "50" }), body, nowMs)).toEqual({ limit: 50, remaining: 3, resetAtMs: 1_800_000_000_000 })
    expect(rateLimitInfo(undefined, body, nowMs)).toEqual({ limit: 20, remaining: 3, resetAtMs: 1_800_000_000_000 })
    // Retry-After only counts as a response header.
    expect(rateLimitInfo(undefined, { headers: { "retry-after": "5" } }, nowMs)).toBeUndefined()
    expect(rateLimitInfo(new Headers({ "X-RateLimit-Limit": "many", "X-RateLimit-Remaining": "Infinity" }), "not an object", nowMs)).toBeUndefined()
    expect(rateLimitInfo(new Headers(), { headers: null }, nowMs)).toBeUndefined()
    // A blank value in the body is no value, not 0.
    expect(rateLimitInfo(undefined, { headers: { "X-RateLimit-Remaining": "  " } }, nowMs)).toBeUndefined()
  })
})

describe("ErrorClassifier: statuses and bodies", () => {
  it("5xx is a server error from 500 up, anything else unexpected below it is a rejection", () => {
    expect(fromStatus(499, undefined, {}, ctx)._tag).toBe("UpstreamRejected")
    expect(fromStatus(500, undefined, {}, ctx)._tag).toBe("UpstreamServerError")
    expect(fromStatus(529, undefined, {}, ctx)._tag).toBe("UpstreamServerError")
    expect(fromStatus(409, undefined, {}, ctx)._tag).toBe("UpstreamRejected")
  })

  it("keeps OpenRouter's code, provider and generation id, and the status as the code when the body has none", () => {
    const error = fromStatus(502, new Headers({ "x-generation-id": "gen-9" }), {
      code: "provider_down",
      message: "Provider returned error",
      metadata: { provider_name: "Azure", raw: "upstream said no" }
    }, ctx)
    expect(error).toMatchObject({
      status: 502,
      code: "provider_down",
      message: "Provider returned error",
      provider: "Azure",
      generationId: "gen-9",
      model: ctx.model,
      metadata: { provider_name: "Azure", raw: "upstream said no" }
    })
    const bare = fromStatus(503, undefined, "Service Unavailable", ctx)
    expect([bare.code, bare.message.includes("503")]).toEqual(["503", true])
    expect(Object.keys(bare).sort()).toEqual(["_tag", "code", "model", "status"])
    expect(fromStatus(400, undefined, { message: 42, metadata: { provider_name: 7 } }, ctx).provider).toBeUndefined()
  })

  it("leaves out fields it does not know, rather than keeping them as undefined", () => {
    expect(failure({ message: "m", status: undefined, code: "c", rateLimit: undefined })).toEqual({ message: "m", code: "c" })
    expect(Object.keys(failure({ message: "m", status: undefined }))).toEqual(["message"])
  })

  it("finds the network code however deep undici's error nests it, and stops walking a cycle", () => {
    const code = (thrown: unknown) => fromTransport(thrown, false, ctx).code
    expect(code(nested(0))).toBe("ECONNREFUSED")
    expect(code(nested(4))).toBe("ECONNREFUSED")
    // Deeper than five levels is not looked for.
    expect(code(nested(5))).toBe("connection_error")
    expect(code(nested(2, 12))).toBe("connection_error")
    const loop: { cause?: unknown; message: string } = { message: "loop" }
    loop.cause = loop
    expect(code(loop)).toBe("connection_error")
    expect(code(undefined)).toBe("connection_error")
  })

  it("says why a connection failed", () => {
    const refused = fromTransport(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }), false, ctx)
    expect([refused._tag, refused.code, refused.message.includes("connect ECONNREFUSED 127.0.0.1:1")]).toEqual(["UpstreamNetworkError", "ECONNREFUSED", true])
    const thrownText = fromTransport("socket closed at byte 17", false, ctx)
    expect(thrownText.message).toContain("socket closed at byte 17")
  })

  it("a timeout names itself and the model, for the logs and the ledger", () => {
    const timeout = fromTransport(new Error("This operation was aborted"), true, ctx)
    expect(timeout).toMatchObject({ _tag: "UpstreamTimeout", code: "timeout", model: ctx.model })
  })

  it("a thrown error's own status field is not taken for an HTTP status", () => {
    const other = fromTransport(Object.assign(new Error("library failure"), { status: 500 }), false, ctx)
    expect([other._tag, other.status]).toEqual(["UpstreamNetworkError", undefined])
  })

  it("a 200 with an error body keeps the provider's code, message and metadata, and the billed usage", () => {
    const usage = { promptTokens: 10, completionTokens: 0, totalTokens: 10 } as never
    const error = left(fromBody(
      { id: "gen-2", model: "openai/gpt-4o", provider: "OpenAI", error: { code: 502, message: "Provider returned error", metadata: { raw: "x" } } },
      new Headers({ "x-generation-id": "gen-header" }),
      usage,
      ctx
    ))
    expect(error).toMatchObject({
      _tag: "UpstreamInvalidResponse",
      status: 200,
      code: "502",
      message: "Provider returned error",
      metadata: { raw: "x" },
      provider: "OpenAI",
      generationId: "gen-2",
      model: "openai/gpt-4o",
      usage
    })
    // Fields of the wrong type are not taken for a provider, id or model.
    const bare = left(fromBody({ provider: 5, id: 7, model: null, error: {} }, new Headers({ "x-generation-id": "gen-header" }), undefined, ctx))
    expect(bare.provider).toBeUndefined()
    expect(bare).toMatchObject({ code: "error_in_body", generationId: "gen-header", model: ctx.model })
    expect(bare.message).not.toBe("")
  })

  it("tells the ways a 200 carries no usable answer apart by code", () => {
    const code = (body: unknown) => left(fromBody(body, undefined, undefined, ctx)).code
    expect(code({ choices: "none" })).toBe("no_choices")
    expect(code({})).toBe("no_choices")
    expect(code({ choices: [] })).toBe("no_choices")
    expect(code({ choices: [{ finish_reason: "error", error: { code: "overloaded", message: "busy" } }] })).toBe("overloaded")
    expect(code({ choices: [{ finish_reason: "error" }] })).toBe("finish_error")
    expect(code({ choices: [{ finish_reason: "stop", message: { content: "   " } }] })).toBe("empty_content")
    expect(code({ choices: [{ finish_reason: "stop", message: { content: ["parts"] } }] })).toBe("empty_content")
    expect(code({ choices: [{ message: { content: "" } }] })).toBe("empty_content")
    expect(code({ choices: [{ finish_reason: "length", message: { content: "" } }] })).toBe("empty_length")
    expect(code({ choices: [{ finish_reason: "content_filter" }] })).toBe("empty_content_filter")
    const finished = left(fromBody({ choices: [{ finish_reason: "error", error: { message: "The model crashed" } }] }, undefined, undefined, ctx))
    expect(finished.message).toBe("The model crashed")
  })

  it("an answer with an unknown or missing finish reason is kept, marked unknown", () => {
    const answer = (choice: unknown) => fromBody({ choices: [choice] }, undefined, undefined, ctx)
    expect(answer({ finish_reason: "eos", message: { content: "Done." } })).toEqual(Either.right({ text: "Done.", finishReason: "unknown" }))
    expect(answer({ message: { content: "Done." } })).toEqual(Either.right({ text: "Done.", finishReason: "unknown" }))
    for (const reason of ["stop", "tool_calls", "content_filter"]) {
      expect(answer({ finish_reason: reason, message: { content: "Done." } })).toEqual(Either.right({ text: "Done.", finishReason: reason }))
    }
  })
})
