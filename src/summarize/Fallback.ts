import type { LlmError, UpstreamFailure } from "../domain/LlmError.js"
import type { FallbackReason } from "./Summary.js"

/** Each error declares its own reason (`domain/LlmError.ts`). */
export const reasonOf = (error: LlmError): FallbackReason => error.fallbackReason

const rejected = (status: number | undefined): string => {
  switch (status) {
    case 401:
      return "OpenRouter rejected the API key (401): check OPENROUTER_API_KEY"
    case 402:
      return "OpenRouter refused the call: the account has too few credits (402)"
    case 403:
      return "OpenRouter refused the input: flagged by moderation (403)"
    case 404:
      return "OpenRouter has no endpoint for this model (404)"
    case 400:
    case 413:
    case 422:
      return `OpenRouter rejected the request as invalid (${status})`
    default:
      return `OpenRouter rejected the request (${status ?? "no status"})`
  }
}

/** The upstream's own code, only when it is a short plain token: nothing free-form reaches the caller. */
const codeOf = (failure: UpstreamFailure) =>
  failure.code !== undefined && /^[A-Za-z0-9_.-]{1,40}$/.test(failure.code) ? failure.code : "unknown"

/**
 * One short sentence a caller can act on: a bad key, a bad request or a busy upstream. Written
 * here from the error's kind, status and code, never from upstream text, so it cannot carry a
 * secret or a quoted prompt.
 */
export const detailOf = (error: LlmError): string => {
  switch (error._tag) {
    case "AiDisabled":
      return error.reason === "ai_disabled" ? "The AI is switched off (AI_ENABLED=false)" : "No OPENROUTER_API_KEY is set"
    case "BudgetExceeded":
      return `The ${error.budget} hard cost limit leaves no room for this call`
    case "CircuitOpen":
      return `Upstream calls are paused after repeated failures; retry in ${Math.max(1, Math.ceil(error.retryAfterMs / 1000))} s`
    case "RateLimitQueueFull":
      return "The upstream queue is full"
    case "UpstreamRateLimited":
      return "OpenRouter kept answering 429 (rate limited)"
    case "UpstreamQuotaExhausted":
      return "OpenRouter's rate limit or quota is used up for longer than LLM_RETRY_MAX_WAIT_MS (429)"
    case "UpstreamTimeout":
      return "OpenRouter did not answer in time (OPENROUTER_TIMEOUT_MS)"
    case "UpstreamNetworkError":
      return `OpenRouter could not be reached (${codeOf(error)})`
    case "UpstreamServerError":
      return `OpenRouter failed (${error.status ?? "5xx"})`
    case "UpstreamRejected":
      return rejected(error.status)
    case "UpstreamInvalidResponse":
      return `OpenRouter's answer could not be used (${codeOf(error)})`
    case "UpstreamUnusableAnswer":
      return error.code === "response_too_large"
        ? "OpenRouter's answer was larger than UPSTREAM_MAX_RESPONSE_BYTES allows; reading stopped"
        : `The model returned no usable text (${codeOf(error)})`
  }
}
