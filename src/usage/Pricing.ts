import type { BigDecimal, Effect, Option } from "effect"
import { Context } from "effect"

/** USD per token (and per request), exact. */
export interface ModelPrice {
  readonly prompt: BigDecimal.BigDecimal
  readonly completion: BigDecimal.BigDecimal
  readonly request: BigDecimal.BigDecimal
  readonly cacheRead: Option.Option<BigDecimal.BigDecimal>
  readonly contextLength: Option.Option<number>
}

export interface TokenCounts {
  readonly promptTokens: number
  readonly completionTokens: number
  readonly cachedPromptTokens: number
}

/**
 * Per-token prices from `GET {base}/models`, refreshed periodically, the last good table
 * persisted, overridable by `PRICING_OVERRIDES`. Used when a response carries no `usage.cost`
 * and to estimate a call's worst case before it is made.
 */
export class Pricing extends Context.Tag("Pricing")<Pricing, {
  readonly priceOf: (model: string) => Effect.Effect<Option.Option<ModelPrice>>
  /** prompt x prompt price + completion x completion price + request price, cached prompt tokens at the cache-read price. */
  readonly costOf: (model: string, tokens: TokenCounts) => Effect.Effect<Option.Option<BigDecimal.BigDecimal>>
}>() {}
