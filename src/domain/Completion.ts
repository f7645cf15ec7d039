import type { BigDecimal, Option } from "effect"
import type { LlmError } from "./LlmError.js"

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant"
  readonly content: string
}

/**
 * An answer in JSON: checked against a schema by the server (`json_schema`, strict), or only
 * valid JSON (`json_object`, the schema then goes in the prompt).
 */
export type ResponseFormat =
  | { readonly type: "json_schema"; readonly name: string; readonly schema: Readonly<Record<string, unknown>> }
  | { readonly type: "json_object" }

/** What a caller asks of the model; unset fields take the configured defaults. */
export interface CompletionRequest {
  readonly messages: ReadonlyArray<ChatMessage>
  readonly model?: string
  readonly temperature?: number
  readonly maxTokens?: number
  readonly fallbackModels?: ReadonlyArray<string>
  /** Why the call is made (`summary`, `summary-part`, ...); stored on its ledger row. */
  readonly purpose?: string
  /** Unset: free text. */
  readonly responseFormat?: ResponseFormat
  /** Whose call this is (a request, a caller): the rate limiter takes owners in turn. */
  readonly owner?: string
  /** Background calls (summary jobs) wait while any interactive call waits; unset is interactive. */
  readonly priority?: Priority
}

export type Priority = "interactive" | "background"

/** A prompt alone is the common case; it becomes one user message. */
export const fromPrompt = (prompt: string, options: Omit<CompletionRequest, "messages"> = {}): CompletionRequest => ({
  ...options,
  messages: [{ role: "user", content: prompt }]
})

export type CostSource = "provider" | "pricing" | "unknown"

/** Tokens and cost of one upstream response. An unknown cost is `None`, never zero. */
export interface Usage {
  readonly promptTokens: number
  readonly completionTokens: number
  readonly totalTokens: number
  readonly cachedPromptTokens: number
  readonly costUsd: Option.Option<BigDecimal.BigDecimal>
  readonly costSource: CostSource
  /** Upstream never reported the tokens (a stream cut before its usage), so they are not zero but unknown. */
  readonly tokensUnknown?: true
}

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter" | "error" | "unknown"

export interface CompletionSuccess {
  readonly status: "success"
  readonly text: string
  readonly finishReason: FinishReason
  /** The model that served, which differs from the requested one when a fallback model answered. */
  readonly model: string
  readonly provider: string | null
  readonly requestId: string | null
  readonly usage: Usage
  readonly latencyMs: number
  readonly attempts: number
}

export interface CompletionFailure {
  readonly status: "error"
  readonly error: LlmError
  readonly latencyMs: number
  readonly attempts: number
}

/** The seed's `CompletionResult`: the text with its metadata, or the error status. */
export type CompletionResult = CompletionSuccess | CompletionFailure
