import { Schema } from "effect"

export const FallbackReason = Schema.Literal(
  "ai_disabled",
  "no_api_key",
  "budget_exceeded",
  "rate_limited",
  "upstream_unavailable",
  "upstream_rejected",
  "invalid_response",
  "circuit_open"
)
export type FallbackReason = typeof FallbackReason.Type

/** What this request spent upstream (zero for an answer from the cache). */
export const SummaryUsage = Schema.Struct({
  promptTokens: Schema.Int,
  completionTokens: Schema.Int,
  totalTokens: Schema.Int,
  /** Exact decimal text; null when any call behind the summary has an unknown cost. */
  costUsd: Schema.NullOr(Schema.String)
})

/** DESIGN.md's answer to `POST /v1/summaries`: a summary, or the raw diff and the reason there is none. */
export const Summary = Schema.Struct({
  status: Schema.Literal("summarized", "fallback"),
  summary: Schema.NullOr(Schema.String),
  rawDiff: Schema.String,
  fallbackReason: Schema.NullOr(FallbackReason),
  /** One safe sentence on why, for a fallback (e.g. a rejected key against a rejected request); null otherwise. */
  fallbackDetail: Schema.NullOr(Schema.String),
  model: Schema.NullOr(Schema.String),
  provider: Schema.NullOr(Schema.String),
  requestId: Schema.NullOr(Schema.String),
  usage: Schema.NullOr(SummaryUsage),
  /** From the summary cache: `usage` and `attempts` are then what this request spent, zero. */
  cached: Schema.Boolean,
  /** Upstream calls made for this request: every part of a split change and every retry. */
  attempts: Schema.Int,
  latencyMs: Schema.Int
})
export type Summary = typeof Summary.Type
