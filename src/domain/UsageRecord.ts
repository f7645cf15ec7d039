import type { BigDecimal, Option } from "effect"
import type { CostSource } from "./Completion.js"

/** One upstream attempt as the ledger (`llm_api_usage`) stores it: successes and failures alike. */
export interface UsageRecord {
  readonly id: string
  readonly model: string
  readonly provider: string | null
  readonly promptTokens: number
  readonly completionTokens: number
  readonly totalTokens: number
  /** `None` when neither the provider nor the price table knows the cost: stored as NULL, never 0. */
  readonly costUsd: Option.Option<BigDecimal.BigDecimal>
  readonly costSource: CostSource
  readonly requestId: string | null
  readonly createdAt: Date
  readonly status: "success" | "error"
  readonly errorCode: string | null
  /** 1 for the first try of a call, 2 for its first retry, ... */
  readonly attempt: number
  readonly latencyMs: number
  readonly purpose: string | null
  /** The name of the bearer token that made the call (never the token); null for calls without one. */
  readonly caller: string | null
  /** The summary-job item the call was made for; absent or null for calls outside jobs. */
  readonly jobItemId?: string | null
}
