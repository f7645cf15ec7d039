import { Either } from "effect"
import { APIConnectionError, APIConnectionTimeoutError, APIError } from "openai"
import type { FinishReason, Usage } from "../domain/Completion.js"
import type { RateLimitInfo, UpstreamError, UpstreamFailure } from "../domain/LlmError.js"
import { scrubDeep } from "./Scrubber.js"
import { ResponseTooLarge } from "./UndiciFetch.js"
import {
  UpstreamInvalidResponse,
  UpstreamNetworkError,
  UpstreamQuotaExhausted,
  UpstreamRateLimited,
  UpstreamRejected,
  UpstreamServerError,
  UpstreamTimeout,
  UpstreamUnusableAnswer
} from "../domain/LlmError.js"

export interface ClassifyContext {
  readonly model: string
  readonly nowMs: number
  /** A 429 whose reset lies further away than this is a quota, not worth waiting for. */
  readonly maxWaitMs: number
  /** Removes known secrets from upstream text (see `Scrubber`): an upstream may echo the key. */
  readonly scrub: (text: string) => string
}

const num = (value: unknown): number | undefined => {
  const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN
  return Number.isFinite(n) ? n : undefined
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {}

/** `Retry-After` is seconds or an HTTP date. */
const retryAfterMs = (value: string | null, nowMs: number): number | undefined => {
  if (value === null) return undefined
  const seconds = num(value)
  if (seconds !== undefined) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs)
}

/** OpenRouter sends the reset in Unix milliseconds; some OpenAI-compatible servers send seconds. */
const resetAtMs = (value: unknown): number | undefined => {
  const n = num(value)
  return n === undefined ? undefined : n < 1e12 ? n * 1000 : n
}

/** The `X-RateLimit-*` facts, from the headers or else from `error.metadata.headers`. */
export const rateLimitInfo = (headers: Headers | undefined, metadata: unknown, nowMs: number): RateLimitInfo | undefined => {
  const fromBody = record(record(metadata)["headers"])
  const pick = (name: string) =>
    headers?.get(name) ?? fromBody[name] ?? fromBody[name.toLowerCase()] ?? undefined
  const info: { -readonly [K in keyof RateLimitInfo]: RateLimitInfo[K] } = {}
  const limit = num(pick("X-RateLimit-Limit"))
  const remaining = num(pick("X-RateLimit-Remaining"))
  const reset = resetAtMs(pick("X-RateLimit-Reset"))
  const retryAfter = retryAfterMs(headers?.get("retry-after") ?? null, nowMs)
  if (limit !== undefined) info.limit = limit
  if (remaining !== undefined) info.remaining = remaining
  if (reset !== undefined) info.resetAtMs = reset
  if (retryAfter !== undefined) info.retryAfterMs = retryAfter
  return Object.keys(info).length > 0 ? info : undefined
}

/** How long the provider asks us to wait, from `Retry-After` or the reset time. */
export const waitMs = (info: RateLimitInfo | undefined, nowMs: number): number | undefined => {
  if (info === undefined) return undefined
  const untilReset = info.resetAtMs !== undefined ? Math.max(0, info.resetAtMs - nowMs) : undefined
  if (info.retryAfterMs === undefined) return untilReset
  return untilReset === undefined ? info.retryAfterMs : Math.max(info.retryAfterMs, untilReset)
}

/** Only defined fields, so `exactOptionalPropertyTypes` holds and logs stay small. */
export const failure = (fields: { readonly [K in keyof UpstreamFailure]: UpstreamFailure[K] | undefined }): UpstreamFailure =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as unknown as UpstreamFailure

/** An HTTP error status and OpenRouter's error body to the error family that decides retrying. */
export const fromStatus = (
  status: number,
  headers: Headers | undefined,
  body: unknown,
  ctx: ClassifyContext
): UpstreamError => {
  const error = record(body)
  const metadata = error["metadata"]
  const rateLimit = rateLimitInfo(headers, metadata, ctx.nowMs)
  const fields = failure({
    status,
    code: ctx.scrub(error["code"] !== undefined ? String(error["code"]) : String(status)),
    message: ctx.scrub(typeof error["message"] === "string" ? error["message"] : `HTTP ${status}`),
    provider: typeof record(metadata)["provider_name"] === "string" ? ctx.scrub(record(metadata)["provider_name"] as string) : undefined,
    generationId: headers?.get("x-generation-id") ?? undefined,
    model: ctx.model,
    rateLimit,
    metadata: scrubDeep(ctx.scrub, metadata)
  })
  if (status === 429) {
    const wait = waitMs(rateLimit, ctx.nowMs)
    return wait !== undefined && wait > ctx.maxWaitMs ? new UpstreamQuotaExhausted(fields) : new UpstreamRateLimited(fields)
  }
  if (status === 408) return new UpstreamTimeout(fields)
  if (status >= 500) return new UpstreamServerError(fields)
  return new UpstreamRejected(fields)
}

const networkCode = (cause: unknown): string | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const code = record(current)["code"]
    if (typeof code === "string") return code
    current = record(current)["cause"]
  }
  return undefined
}

/** Whatever the SDK call rejected with, as a typed upstream error. */
export const fromThrown = (thrown: unknown, ctx: ClassifyContext): UpstreamError => {
  // Not retried: a provider that sent this much once will do it again, and each attempt may be billed.
  if (thrown instanceof APIConnectionError && thrown.cause instanceof ResponseTooLarge) {
    return new UpstreamUnusableAnswer(failure({ code: "response_too_large", message: thrown.cause.message, model: ctx.model }))
  }
  if (thrown instanceof APIConnectionTimeoutError) {
    return new UpstreamTimeout(failure({ message: "Upstream did not answer in time", code: "timeout", model: ctx.model }))
  }
  if (thrown instanceof APIConnectionError) {
    return new UpstreamNetworkError(failure({
      message: ctx.scrub(`Connection to upstream failed: ${String(record(thrown.cause)["message"] ?? thrown.message)}`),
      code: networkCode(thrown.cause) ?? "connection_error",
      model: ctx.model
    }))
  }
  if (thrown instanceof APIError && thrown.status !== undefined) {
    return fromStatus(thrown.status, thrown.headers, thrown.error, ctx)
  }
  // A 200 whose body is not JSON (or was cut) makes the SDK's `response.json()` throw.
  return new UpstreamInvalidResponse(failure({
    status: 200,
    code: "unparseable_body",
    message: ctx.scrub(`Unreadable response: ${thrown instanceof Error ? thrown.message : String(thrown)}`),
    model: ctx.model
  }))
}

export interface ParsedAnswer {
  readonly text: string
  readonly finishReason: FinishReason
}

const finishReasons = new Set<string>(["stop", "length", "tool_calls", "content_filter", "error"])

/**
 * The three ways a 200 can still be a failure (an `error` body, no choices, a choice that finished
 * with `error`) and an empty answer. The SDK returns all of them as successes.
 */
export const fromBody = (
  body: unknown,
  headers: Headers | undefined,
  usage: Usage | undefined,
  ctx: ClassifyContext
): Either.Either<ParsedAnswer, UpstreamError> => {
  const data = record(body)
  const base = {
    status: 200,
    provider: typeof data["provider"] === "string" ? ctx.scrub(data["provider"]) : undefined,
    generationId: (typeof data["id"] === "string" ? data["id"] : undefined) ?? headers?.get("x-generation-id") ?? undefined,
    model: typeof data["model"] === "string" ? data["model"] : ctx.model,
    usage
  }
  const invalid = (code: string, message: string, metadata?: unknown) =>
    Either.left(new UpstreamInvalidResponse(failure({ ...base, code: ctx.scrub(code), message: ctx.scrub(message), metadata: scrubDeep(ctx.scrub, metadata) })))
  if (data["error"] !== undefined) {
    const error = record(data["error"])
    return invalid(String(error["code"] ?? "error_in_body"), String(error["message"] ?? "Error in a 200 response"), error["metadata"])
  }
  const choices = data["choices"]
  if (!Array.isArray(choices) || choices.length === 0) return invalid("no_choices", "Response has no choices")
  const choice = record(choices[0])
  const reason = String(choice["finish_reason"] ?? "unknown")
  if (reason === "error") {
    const error = record(choice["error"])
    return invalid(String(error["code"] ?? "finish_error"), String(error["message"] ?? "The model stopped with an error"))
  }
  const content = record(choice["message"])["content"]
  const text = typeof content === "string" ? content.trim() : ""
  const finishReason = (finishReasons.has(reason) ? reason : "unknown") as FinishReason
  if (text === "") {
    // Filtered content and an answer cut before any text will come back the same way.
    return finishReason === "content_filter" || finishReason === "length"
      ? Either.left(new UpstreamUnusableAnswer(failure({ ...base, code: `empty_${finishReason}`, message: `Empty answer (finish_reason ${finishReason})` })))
      : invalid("empty_content", "The model returned no text")
  }
  return Either.right({ text, finishReason })
}
