import { BigDecimal, Option } from "effect"
import type { UsageRecord } from "../../src/domain/UsageRecord.js"

/** A ledger row with plausible values; tests override what they assert on. */
export const usageRow = (overrides: Partial<UsageRecord> = {}): UsageRecord => ({
  id: crypto.randomUUID(),
  model: "openai/gpt-4o-mini",
  provider: "OpenAI",
  promptTokens: 29,
  completionTokens: 33,
  totalTokens: 62,
  costUsd: Option.some(BigDecimal.unsafeFromString("0.00002415")),
  costSource: "provider",
  requestId: `gen-${Date.now()}-${Math.random().toString(36).slice(2, 12)}`,
  createdAt: new Date(),
  status: "success",
  errorCode: null,
  attempt: 1,
  latencyMs: 120,
  purpose: "summary",
  caller: null,
  ...overrides
})
