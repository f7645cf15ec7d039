import type { BigDecimal, Effect, Option } from "effect"
import { Context } from "effect"
import type { ChatMessage, FinishReason, ResponseFormat } from "../domain/Completion.js"
import type { RateLimitInfo, UpstreamError } from "../domain/LlmError.js"

/** A request with every default already applied. */
export interface ProviderRequest {
  readonly messages: ReadonlyArray<ChatMessage>
  readonly model: string
  readonly fallbackModels: ReadonlyArray<string>
  readonly temperature: number
  readonly maxTokens: number
  readonly responseFormat?: ResponseFormat
}

export interface ProviderUsage {
  readonly promptTokens: number
  readonly completionTokens: number
  readonly totalTokens: number
  readonly cachedPromptTokens: number
  /** The provider's own figure (OpenRouter's `usage.cost`), when it sent one. */
  readonly costUsd: Option.Option<BigDecimal.BigDecimal>
  /** Upstream never reported the tokens (a stream cut before its usage): without a cost, the cost is unknown. */
  readonly tokensUnknown?: true
}

export interface ProviderAnswer {
  readonly text: string
  readonly finishReason: FinishReason
  readonly model: string
  readonly provider: string | null
  readonly requestId: string | null
  readonly usage: ProviderUsage
  readonly rateLimit: RateLimitInfo | undefined
}

export interface KeyInfo {
  readonly label: string | null
  readonly limitUsd: Option.Option<BigDecimal.BigDecimal>
  readonly limitRemainingUsd: Option.Option<BigDecimal.BigDecimal>
  readonly isFreeTier: boolean
  readonly rateLimit: Option.Option<{ readonly requests: number; readonly windowMs: number }>
}

/**
 * One attempt against one provider, with no retries, limits or records: `LlmClient` adds those,
 * so a second provider only has to implement this.
 */
export class CompletionProvider extends Context.Tag("CompletionProvider")<CompletionProvider, {
  readonly complete: (request: ProviderRequest) => Effect.Effect<ProviderAnswer, UpstreamError>
  /** A cheap check that the key and the endpoint work (`GET {base}/key`). */
  readonly keyInfo: Effect.Effect<KeyInfo, UpstreamError>
}>() {}
