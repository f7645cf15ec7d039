import { Either } from "effect"
import type { FinishReason, Usage } from "../domain/Completion.js"
import type { RateLimitInfo, UpstreamError, UpstreamFailure } from "../domain/LlmError.js"
import type { ChatResponse as ChatResponseType } from "./OpenRouterWire.js"
import { ChatResponse, decodeLoose, ErrorBody, ErrorMetadata, ErrorObject } from "./OpenRouterWire.js"
import { scrubDeep } from "./Scrubber.js"
import { ResponseTooLarge } from "./CappedRead.js"
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

/** Response headers as a `Headers` (the gateway passes them on as one) or as undici gives them (a lower-cased record). */
export type HeaderSource = Headers | Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

export const header = (headers: HeaderSource | undefined, name: string): string | undefined => {
  if (headers === undefined) return undefined
  if (headers instanceof Headers) return headers.get(name) ?? undefined
  const value = headers[name.toLowerCase()]
  return typeof value === "string" ? value : value?.[0]
}

const decodeMetadata = decodeLoose(ErrorMetadata)
const decodeErrorBody = decodeLoose(ErrorBody)
const decodeErrorObject = decodeLoose(ErrorObject)
const decodeChat = decodeLoose(ChatResponse)

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
export const rateLimitInfo = (headers: HeaderSource | undefined, metadata: unknown, nowMs: number): RateLimitInfo | undefined => {
  const fromBody = decodeMetadata(metadata).headers ?? {}
  const pick = (name: string) => header(headers, name) ?? fromBody[name] ?? fromBody[name.toLowerCase()]
  const info: { -readonly [K in keyof RateLimitInfo]: RateLimitInfo[K] } = {}
  const limit = num(pick("X-RateLimit-Limit"))
  const remaining = num(pick("X-RateLimit-Remaining"))
  const reset = resetAtMs(pick("X-RateLimit-Reset"))
  const retryAfter = retryAfterMs(header(headers, "retry-after") ?? null, nowMs)
  if (limit !== undefined) info.limit = limit
  if (remaining !== undefined) info.remaining = remaining
  if (reset !== undefined) info.resetAtMs = reset
  if (retryAfter !== undefined) info.retryAfterMs = retryAfter
  return limit === undefined && remaining === undefined && reset === undefined && retryAfter === undefined ? undefined : info
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

/** Every status that is not a plain rejection, and the error family it means; 5xx is a server error throughout. */
const statusTable: ReadonlyArray<readonly [(status: number) => boolean, (fields: UpstreamFailure, wait: number | undefined, ctx: ClassifyContext) => UpstreamError]> = [
  [(s) => s === 429, (fields, wait, ctx) => wait !== undefined && wait > ctx.maxWaitMs ? new UpstreamQuotaExhausted(fields) : new UpstreamRateLimited(fields)],
  [(s) => s === 408, (fields) => new UpstreamTimeout(fields)],
  [(s) => s >= 500, (fields) => new UpstreamServerError(fields)]
]

const classifyStatus = (status: number, headers: HeaderSource | undefined, error: typeof ErrorObject.Type, ctx: ClassifyContext): UpstreamError => {
  const rateLimit = rateLimitInfo(headers, error.metadata, ctx.nowMs)
  const provider = decodeMetadata(error.metadata).provider_name
  const fields = failure({
    status,
    code: ctx.scrub(error.code ?? String(status)),
    message: ctx.scrub(error.message ?? `HTTP ${status}`),
    provider: provider === undefined ? undefined : ctx.scrub(provider),
    generationId: header(headers, "x-generation-id"),
    model: ctx.model,
    rateLimit,
    metadata: scrubDeep(ctx.scrub, error.metadata)
  })
  const row = statusTable.find(([matches]) => matches(status))
  return row === undefined ? new UpstreamRejected(fields) : row[1](fields, waitMs(rateLimit, ctx.nowMs), ctx)
}

/** An HTTP error status and OpenRouter's `error` object (already taken out of its body) to the error family that decides retrying. */
export const fromStatus = (status: number, headers: HeaderSource | undefined, error: unknown, ctx: ClassifyContext): UpstreamError =>
  classifyStatus(status, headers, decodeErrorObject(error) ?? {}, ctx)

/** A whole error response body, `{"error": {...}}`, as read off the wire. */
export const fromErrorResponse = (status: number, headers: HeaderSource | undefined, body: unknown, ctx: ClassifyContext): UpstreamError =>
  classifyStatus(status, headers, decodeErrorBody(body).error ?? {}, ctx)

/** What was thrown is not wire data: a library's error, walked only for its network code and message. */
const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {}

const networkCode = (cause: unknown): string | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const code = record(current)["code"]
    if (typeof code === "string") return code
    current = record(current)["cause"]
  }
  return undefined
}

/** undici's own timeouts, which mean what the attempt's deadline means. */
export const timeoutCodes: ReadonlySet<string> = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"])

/** What an undici call rejected with: `timedOut` when the attempt's own deadline aborted it. */
export const fromTransport = (thrown: unknown, timedOut: boolean, ctx: ClassifyContext): UpstreamError => {
  if (thrown instanceof ResponseTooLarge) {
    return new UpstreamUnusableAnswer(failure({ code: "response_too_large", message: thrown.message, model: ctx.model }))
  }
  const code = networkCode(thrown)
  if (timedOut || (code !== undefined && timeoutCodes.has(code))) {
    return new UpstreamTimeout(failure({ message: "Upstream did not answer in time", code: "timeout", model: ctx.model }))
  }
  return new UpstreamNetworkError(failure({
    message: ctx.scrub(`Connection to upstream failed: ${thrown instanceof Error ? thrown.message : String(thrown)}`),
    code: code ?? "connection_error",
    model: ctx.model
  }))
}

/** A 200 whose body is not JSON (or was cut). */
export const unreadable = (reason: string, ctx: ClassifyContext): UpstreamError =>
  new UpstreamInvalidResponse(failure({ status: 200, code: "unparseable_body", message: ctx.scrub(`Unreadable response: ${reason}`), model: ctx.model }))

export interface ParsedAnswer {
  readonly text: string
  readonly finishReason: FinishReason
}

const finishReasons = new Set<string>(["stop", "length", "tool_calls", "content_filter", "error"])

/** Who served a chat response (OpenRouter's `model`, `provider` and `id`, else the generation header), scrubbed. */
export const servedBy = (data: ChatResponseType, headers: HeaderSource | undefined, ctx: ClassifyContext) => {
  const id = data.id ?? header(headers, "x-generation-id")
  return {
    model: data.model === undefined ? ctx.model : ctx.scrub(data.model),
    provider: data.provider === undefined ? null : ctx.scrub(data.provider),
    requestId: id === undefined ? null : ctx.scrub(id)
  }
}

/** A chat response body as it came off the wire, decoded once. */
export const decodeChatResponse: (body: unknown) => ChatResponseType = decodeChat

/**
 * The three ways a 200 can still be a failure (an `error` body, no choices, a choice that finished
 * with `error`) and an empty answer, all of which arrive with status 200.
 */
export const fromBody = (
  body: unknown,
  headers: HeaderSource | undefined,
  usage: Usage | undefined,
  ctx: ClassifyContext
): Either.Either<ParsedAnswer, UpstreamError> => fromChatResponse(decodeChat(body), headers, usage, ctx)

export const fromChatResponse = (
  data: ChatResponseType,
  headers: HeaderSource | undefined,
  usage: Usage | undefined,
  ctx: ClassifyContext
): Either.Either<ParsedAnswer, UpstreamError> => {
  const served = servedBy(data, headers, ctx)
  const base = { status: 200, provider: served.provider ?? undefined, generationId: served.requestId ?? undefined, model: served.model, usage }
  const invalid = (code: string, message: string, metadata?: unknown) =>
    Either.left(new UpstreamInvalidResponse(failure({ ...base, code: ctx.scrub(code), message: ctx.scrub(message), metadata: scrubDeep(ctx.scrub, metadata) })))
  if (data.error !== undefined) {
    return invalid(data.error.code ?? "error_in_body", data.error.message ?? "Error in a 200 response", data.error.metadata)
  }
  const choice = data.choices?.[0]
  if (choice === undefined) return invalid("no_choices", "Response has no choices")
  const reason = choice.finish_reason ?? "unknown"
  if (reason === "error") {
    return invalid(choice.error?.code ?? "finish_error", choice.error?.message ?? "The model stopped with an error")
  }
  const text = choice.message?.content?.trim() ?? ""
  const finishReason = (finishReasons.has(reason) ? reason : "unknown") as FinishReason
  if (text === "") {
    // Filtered content and an answer cut before any text will come back the same way.
    return finishReason === "content_filter" || finishReason === "length"
      ? Either.left(new UpstreamUnusableAnswer(failure({ ...base, code: `empty_${finishReason}`, message: `Empty answer (finish_reason ${finishReason})` })))
      : invalid("empty_content", "The model returned no text")
  }
  return Either.right({ text, finishReason })
}
