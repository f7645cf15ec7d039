import { BigDecimal, Effect, Layer, Option, Ref } from "effect"
import { BudgetGuard } from "../../src/budget/BudgetGuard.js"
import type { UsageRecord } from "../../src/domain/UsageRecord.js"
import { CircuitBreaker } from "../../src/llm/CircuitBreaker.js"
import { RateLimiter } from "../../src/llm/RateLimiter.js"
import type { ModelPrice } from "../../src/llm/Pricing.js"
import { Pricing } from "../../src/llm/Pricing.js"
import { UsageRepo } from "../../src/usage/UsageRepo.js"

/** Stand-ins for unit tests of one service: no limits, no circuit, no budget, a ledger in memory. */
export const openRateLimiter = Layer.succeed(RateLimiter, RateLimiter.of({
  withPermit: (effect) => effect,
  pause: () => Effect.void,
  resume: Effect.void,
  adoptProviderLimit: () => Effect.void,
  stats: Effect.succeed({ queueDepth: 0, inFlight: 0, pausedUntilMs: null, mode: "local" as const })
}))

export const closedCircuit = Layer.succeed(CircuitBreaker, CircuitBreaker.of({
  guard: (effect) => effect,
  recordSuccess: Effect.void,
  recordTransientFailure: Effect.void,
  state: Effect.succeed("closed" as const)
}))

export const unlimitedBudget = Layer.succeed(BudgetGuard, BudgetGuard.of({
  reserve: (amountUsd) => Effect.succeed({ id: "none", amountUsd }),
  release: () => Effect.void,
  exhausted: Effect.succeed(Option.none()),
  status: Effect.succeed([]),
  capState: () => Effect.succeed([])
}))

const price = (prompt: string, completion: string): ModelPrice => ({
  prompt: BigDecimal.unsafeFromString(prompt),
  completion: BigDecimal.unsafeFromString(completion),
  request: BigDecimal.fromBigInt(0n),
  cacheRead: Option.none(),
  contextLength: Option.some(128_000)
})

/** gpt-4o-mini's price only: any other model has an unknown cost. */
export const staticPricing = Layer.succeed(Pricing, Pricing.of({
  priceOf: (model) => Effect.succeed(model === "openai/gpt-4o-mini" ? Option.some(price("0.00000015", "0.0000006")) : Option.none()),
  costOf: (model, tokens) =>
    Effect.succeed(model === "openai/gpt-4o-mini"
      ? Option.some(BigDecimal.normalize(BigDecimal.sum(
        BigDecimal.multiply(BigDecimal.fromBigInt(BigInt(tokens.promptTokens)), BigDecimal.unsafeFromString("0.00000015")),
        BigDecimal.multiply(BigDecimal.fromBigInt(BigInt(tokens.completionTokens)), BigDecimal.unsafeFromString("0.0000006"))
      )))
      : Option.none())
}))

/** The ledger as an array the test can read back. */
export const memoryLedger = Effect.gen(function*() {
  const rows = yield* Ref.make<Array<UsageRecord>>([])
  const layer = Layer.succeed(UsageRepo, UsageRepo.of({
    // Appended in place: copying the array per row made long benchmark runs quadratic.
    record: (row) => Ref.update(rows, (all) => (all.push(row), all)),
    totals: () => Effect.die("not used in unit tests"),
    spend: () => Effect.die("not used in unit tests"),
    callerSpend: () => Effect.die("not used in unit tests"),
    recent: () => Effect.die("not used in unit tests"),
    spoolDepth: Effect.succeed(0)
  }))
  return { rows, layer }
})
