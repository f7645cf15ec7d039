import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type { LlmError } from "../domain/LlmError.js"
import { waitMs } from "../llm/ErrorClassifier.js"
import type { InvalidChatRequest } from "./ChatRequest.js"

/** OpenAI's error body, which every OpenAI client turns into its own typed error by status. */
export interface OpenAiErrorReply {
  readonly status: number
  readonly type: string
  readonly code: string
  readonly message: string
  readonly param?: string
  readonly retryAfterMs?: number
}

const typeOf = (status: number): string => {
  switch (status) {
    case 400:
      return "invalid_request_error"
    case 401:
      return "authentication_error"
    case 402:
      return "insufficient_quota"
    case 403:
      return "permission_error"
    case 404:
      return "not_found_error"
    case 429:
      return "rate_limit_error"
    default:
      return status >= 500 ? "api_error" : "invalid_request_error"
  }
}

const reply = (status: number, code: string, message: string, retryAfterMs?: number): OpenAiErrorReply => ({
  status,
  type: typeOf(status),
  code,
  message,
  ...(retryAfterMs === undefined ? {} : { retryAfterMs })
})

/**
 * An honest status for each way a call can fail: upstream's own rejection keeps its status,
 * exhausted retries of a transient failure are 502 (504 for a timeout), waiting is 429 with
 * `Retry-After`, a budget is 402 `budget_exceeded` and an open circuit 503.
 */
export const fromLlmError = (error: LlmError, nowMs: number): OpenAiErrorReply => {
  switch (error._tag) {
    case "AiDisabled":
      return reply(503, error.reason, error.reason === "ai_disabled" ? "The AI is switched off (AI_ENABLED=false)" : "No OPENROUTER_API_KEY is configured")
    case "BudgetExceeded":
      return reply(
        402,
        "budget_exceeded",
        error.caller === undefined
          ? `The ${error.budget} hard budget of ${error.limitUsd} USD is reached (committed ${error.committedUsd} USD, this call could cost ${error.requestedUsd} USD)`
          : `Caller ${error.caller}'s monthly budget of ${error.limitUsd} USD is reached (committed ${error.committedUsd} USD, this call could cost ${error.requestedUsd} USD)`
      )
    case "CircuitOpen":
      return reply(503, "circuit_open", "Upstream is failing; calls are paused for a moment", error.retryAfterMs)
    case "RateLimitQueueFull":
      return reply(429, "queue_full", `The upstream queue is full (${error.queueDepth} waiting); retry later`, error.retryAfterMs)
    case "UpstreamRateLimited":
    case "UpstreamQuotaExhausted":
      return reply(429, error.code ?? "rate_limited", error.message, waitMs(error.rateLimit, nowMs) ?? 1_000)
    case "UpstreamRejected":
      return reply(error.status ?? 502, error.code ?? "upstream_rejected", error.message)
    case "UpstreamTimeout":
      return reply(504, error.code ?? "timeout", error.message)
    case "UpstreamNetworkError":
    case "UpstreamServerError":
    case "UpstreamInvalidResponse":
    case "UpstreamUnusableAnswer":
      return reply(502, error.code ?? "bad_gateway", error.message)
  }
}

export const fromInvalidRequest = (invalid: InvalidChatRequest): OpenAiErrorReply => ({
  ...reply(400, "invalid_request", invalid.message),
  param: invalid.param
})

export const toResponse = (e: OpenAiErrorReply): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(
    { error: { message: e.message, type: e.type, code: e.code, param: e.param ?? null } },
    {
      status: e.status,
      ...(e.retryAfterMs === undefined ? {} : { headers: { "retry-after": String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))) } })
    }
  )
