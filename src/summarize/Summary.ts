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
  model: Schema.NullOr(Schema.String),
  provider: Schema.NullOr(Schema.String),
  requestId: Schema.NullOr(Schema.String),
  usage: Schema.NullOr(SummaryUsage),
  cached: Schema.Boolean,
  attempts: Schema.Int,
  latencyMs: Schema.Int,
  /** The summary as data; null for a fallback, in text mode, or when the answer could not be read. */
  structured: Schema.NullOr(Structured),
  /** How many of the quotes were found in the change and how many changed sections they cover. */
  grounding: Schema.NullOr(Grounding),
  /** Why a structured answer was asked for and not obtained (the text is kept in `summary`). */
  structuredError: Schema.NullOr(Schema.String)
})
export type Summary = typeof Summary.Type
