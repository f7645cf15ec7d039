import { Schema } from "effect"
import { Grounding, Structured } from "./StructuredSummary.js"

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
  fallbackDetail: Schema.NullOr(Schema.String).annotations({
    description: "For a fallback, one short sentence on why, written by the service (never upstream text), e.g. \"OpenRouter rejected the API key (401): check OPENROUTER_API_KEY\" against \"OpenRouter rejected the request as invalid (400)\"; null otherwise."
  }),
  model: Schema.NullOr(Schema.String),
  provider: Schema.NullOr(Schema.String),
  requestId: Schema.NullOr(Schema.String),
  usage: Schema.NullOr(SummaryUsage).annotations({
    description: "Tokens and cost this request spent upstream, over every call behind it; all zeros for a cached answer; null when no model answered."
  }),
  cached: Schema.Boolean.annotations({
    description: "The answer was paid for by an earlier request: nothing was spent for this one (attempts 0, usage zero); the original cost is in the ledger once."
  }),
  attempts: Schema.Int.annotations({
    description: "Upstream calls made for this request: retries included, and every part and the combining call of a change split into parts."
  }),
  latencyMs: Schema.Int,
  /** The summary as data; null for a fallback, in text mode, or when the answer could not be read. */
  structured: Schema.NullOr(Structured),
  /** How many of the quotes were found in the change and how many changed sections they cover. */
  grounding: Schema.NullOr(Grounding),
  /** Why a structured answer was asked for and not obtained (the text is kept in `summary`). */
  structuredError: Schema.NullOr(Schema.String)
})
export type Summary = typeof Summary.Type
