import { describe, expect, it } from "@effect/vitest"
import type { LlmError } from "../../../src/domain/LlmError.js"
import {
  AiDisabled,
  BudgetExceeded,
  CircuitOpen,
  isTransient,
  isUpstream,
  RateLimitQueueFull,
  UpstreamInvalidResponse,
  UpstreamNetworkError,
  UpstreamQuotaExhausted,
  UpstreamRateLimited,
  UpstreamRejected,
  UpstreamServerError,
  UpstreamTimeout,
  UpstreamUnusableAnswer
} from "../../../src/domain/LlmError.js"

const failure = { message: "m" }

describe("LlmError: each error says its family and its fallback reason", () => {
  const table: ReadonlyArray<[LlmError, string, string]> = [
    [new UpstreamTimeout(failure), "transient", "upstream_unavailable"],
    [new UpstreamNetworkError(failure), "transient", "upstream_unavailable"],
    [new UpstreamServerError(failure), "transient", "upstream_unavailable"],
    [new UpstreamRateLimited(failure), "transient", "rate_limited"],
    [new UpstreamInvalidResponse(failure), "transient", "invalid_response"],
    [new UpstreamRejected(failure), "permanent", "upstream_rejected"],
    [new UpstreamQuotaExhausted(failure), "permanent", "rate_limited"],
    [new UpstreamUnusableAnswer(failure), "permanent", "invalid_response"],
    [new AiDisabled({ reason: "no_api_key" }), "guard", "no_api_key"],
    [new AiDisabled({ reason: "ai_disabled" }), "guard", "ai_disabled"],
    [new CircuitOpen({ retryAfterMs: 1 }), "guard", "circuit_open"],
    [new BudgetExceeded({ budget: "monthly", limitUsd: "1", committedUsd: "1", requestedUsd: "1" }), "guard", "budget_exceeded"],
    [new RateLimitQueueFull({ retryAfterMs: 1, queueDepth: 1 }), "guard", "rate_limited"]
  ]
  for (const [error, family, reason] of table) {
    it(`${error._tag} is ${family}, falling back as ${reason}`, () => {
      expect([error.family, error.fallbackReason, isTransient(error), isUpstream(error)])
        .toEqual([family, reason, family === "transient", family !== "guard"])
    })
  }

  it("the family is not an own field: an error's fields are what it was built with", () => {
    expect(Object.keys(new UpstreamTimeout({ message: "m", code: "timeout" })).sort()).toEqual(["_tag", "code"])
  })
})
