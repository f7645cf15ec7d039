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

// Transient: retrying later can succeed.
export class UpstreamTimeout extends Data.TaggedError("UpstreamTimeout")<UpstreamFailure> {}
export class UpstreamNetworkError extends Data.TaggedError("UpstreamNetworkError")<UpstreamFailure> {}
export class UpstreamServerError extends Data.TaggedError("UpstreamServerError")<UpstreamFailure> {}
export class UpstreamRateLimited extends Data.TaggedError("UpstreamRateLimited")<UpstreamFailure> {}
export class UpstreamInvalidResponse extends Data.TaggedError("UpstreamInvalidResponse")<UpstreamFailure> {}

// Permanent: the same request will fail the same way.
export class UpstreamRejected extends Data.TaggedError("UpstreamRejected")<UpstreamFailure> {}
export class UpstreamQuotaExhausted extends Data.TaggedError("UpstreamQuotaExhausted")<UpstreamFailure> {}
export class UpstreamUnusableAnswer extends Data.TaggedError("UpstreamUnusableAnswer")<UpstreamFailure> {}

export type TransientError =
  | UpstreamTimeout
  | UpstreamNetworkError
  | UpstreamServerError
  | UpstreamRateLimited
  | UpstreamInvalidResponse

export type PermanentError = UpstreamRejected | UpstreamQuotaExhausted | UpstreamUnusableAnswer

export type UpstreamError = TransientError | PermanentError

// Guards that refuse a call before it reaches upstream.
export class AiDisabled extends Data.TaggedError("AiDisabled")<{ readonly reason: "ai_disabled" | "no_api_key" }> {}
export class CircuitOpen extends Data.TaggedError("CircuitOpen")<{ readonly retryAfterMs: number }> {}
export class BudgetExceeded extends Data.TaggedError("BudgetExceeded")<{
  readonly budget: "daily" | "monthly"
  readonly limitUsd: string
  readonly committedUsd: string
  readonly requestedUsd: string
  /** Set when the cap that refused is a caller's own (`CALLER_BUDGETS_MONTHLY_USD`), not the global one. */
  readonly caller?: string
}> {}
/** The rate limiter's wait queue is full: the API answers 429 with this estimate as `Retry-After`. */
export class RateLimitQueueFull extends Data.TaggedError("RateLimitQueueFull")<{
  readonly retryAfterMs: number
  readonly queueDepth: number
}> {}

export type GuardError = AiDisabled | CircuitOpen | BudgetExceeded | RateLimitQueueFull

export type LlmError = UpstreamError | GuardError

const transientTags = new Set<string>([
  "UpstreamTimeout",
  "UpstreamNetworkError",
  "UpstreamServerError",
  "UpstreamRateLimited",
  "UpstreamInvalidResponse"
])

export const isTransient = (error: LlmError): error is TransientError => transientTags.has(error._tag)

export const isUpstream = (error: LlmError): error is UpstreamError => error._tag.startsWith("Upstream")
