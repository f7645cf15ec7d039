import { Data } from "effect"
import type { Usage } from "./Completion.js"

/** The provider's rate-limit facts, from `X-RateLimit-*` and `Retry-After` (or the error body). */
export interface RateLimitInfo {
  readonly limit?: number
  readonly remaining?: number
  /** Unix time in milliseconds at which the window resets. */
  readonly resetAtMs?: number
  readonly retryAfterMs?: number
}

/** What every upstream failure keeps for logs, the ledger and the caller; never the key. */
export interface UpstreamFailure {
  readonly message: string
  readonly status?: number
  /** OpenRouter's `error.code` (usually the HTTP status) or a network code such as `ECONNRESET`. */
  readonly code?: string
  readonly provider?: string
  readonly generationId?: string
  readonly model?: string
  readonly rateLimit?: RateLimitInfo
  readonly metadata?: unknown
  /** Some failed responses are still billed (an error inside a 200 with usage). */
  readonly usage?: Usage
}

/**
 * What an error is, said once where it is declared: `transient` (retrying later can succeed),
 * `permanent` (the same request fails the same way) or `guard` (refused before reaching upstream).
 */
export type Family = "transient" | "permanent" | "guard"

/** Why a summary fell back to the raw diff, per error (the summary's `fallbackReason`). */
export type FallbackReason =
  | "ai_disabled"
  | "no_api_key"
  | "budget_exceeded"
  | "rate_limited"
  | "upstream_unavailable"
  | "upstream_rejected"
  | "invalid_response"
  | "circuit_open"

// On the prototype (getters), so an error's own fields stay what it was built with.
const upstream = <const Tag extends string, const F extends Exclude<Family, "guard">, const R extends FallbackReason>(
  tag: Tag,
  family: F,
  fallbackReason: R
) =>
  class extends Data.TaggedError(tag)<UpstreamFailure> {
    get family(): F {
      return family
    }
    get fallbackReason(): R {
      return fallbackReason
    }
  }

export class UpstreamTimeout extends upstream("UpstreamTimeout", "transient", "upstream_unavailable") {}
export class UpstreamNetworkError extends upstream("UpstreamNetworkError", "transient", "upstream_unavailable") {}
export class UpstreamServerError extends upstream("UpstreamServerError", "transient", "upstream_unavailable") {}
export class UpstreamRateLimited extends upstream("UpstreamRateLimited", "transient", "rate_limited") {}
export class UpstreamInvalidResponse extends upstream("UpstreamInvalidResponse", "transient", "invalid_response") {}

export class UpstreamRejected extends upstream("UpstreamRejected", "permanent", "upstream_rejected") {}
export class UpstreamQuotaExhausted extends upstream("UpstreamQuotaExhausted", "permanent", "rate_limited") {}
export class UpstreamUnusableAnswer extends upstream("UpstreamUnusableAnswer", "permanent", "invalid_response") {}

export type UpstreamError =
  | UpstreamTimeout
  | UpstreamNetworkError
  | UpstreamServerError
  | UpstreamRateLimited
  | UpstreamInvalidResponse
  | UpstreamRejected
  | UpstreamQuotaExhausted
  | UpstreamUnusableAnswer

export type TransientError = Extract<UpstreamError, { readonly family: "transient" }>
export type PermanentError = Extract<UpstreamError, { readonly family: "permanent" }>

// Guards that refuse a call before it reaches upstream.
export class AiDisabled extends Data.TaggedError("AiDisabled")<{ readonly reason: "ai_disabled" | "no_api_key" }> {
  get family(): "guard" {
    return "guard"
  }
  get fallbackReason(): "ai_disabled" | "no_api_key" {
    return this.reason
  }
}
export class CircuitOpen extends Data.TaggedError("CircuitOpen")<{ readonly retryAfterMs: number }> {
  get family(): "guard" {
    return "guard"
  }
  get fallbackReason(): "circuit_open" {
    return "circuit_open"
  }
}
export class BudgetExceeded extends Data.TaggedError("BudgetExceeded")<{
  readonly budget: "daily" | "monthly"
  readonly limitUsd: string
  readonly committedUsd: string
  readonly requestedUsd: string
  /** Set when the cap that refused is a caller's own (`CALLER_BUDGETS_MONTHLY_USD`), not the global one. */
  readonly caller?: string
}> {
  get family(): "guard" {
    return "guard"
  }
  get fallbackReason(): "budget_exceeded" {
    return "budget_exceeded"
  }
}
/** The rate limiter's wait queue is full: the API answers 429 with this estimate as `Retry-After`. */
export class RateLimitQueueFull extends Data.TaggedError("RateLimitQueueFull")<{
  readonly retryAfterMs: number
  readonly queueDepth: number
}> {
  get family(): "guard" {
    return "guard"
  }
  get fallbackReason(): "rate_limited" {
    return "rate_limited"
  }
}

export type GuardError = AiDisabled | CircuitOpen | BudgetExceeded | RateLimitQueueFull

export type LlmError = UpstreamError | GuardError

export const isTransient = (error: LlmError): error is TransientError => error.family === "transient"

export const isUpstream = (error: LlmError): error is UpstreamError => error.family !== "guard"
