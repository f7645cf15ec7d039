/**
 * Effect operations per successful completion when nothing binds (no cap, circuit closed, limiter
 * far from its limit): `npx tsx bench/ops.ts`. The provider answers at once and the ledger is in
 * memory, so the count is the client's own, with the real rate limiter and with a pass-through one.
 * Counted by a supervisor under `OpSupervision`; the count does not depend on the machine's load.
 */
import { BigDecimal, Context, Effect, Layer, Option, RuntimeFlags, RuntimeFlagsPatch, Scope, Supervisor } from "effect"
import { pathToFileURL } from "node:url"
import { CircuitBreaker } from "../src/llm/CircuitBreaker.js"
import { CompletionProvider } from "../src/llm/CompletionProvider.js"
import { LlmClient } from "../src/llm/LlmClient.js"
import { RateLimiter } from "../src/llm/RateLimiter.js"
import { memoryLedger, openRateLimiter, staticPricing, unlimitedBudget } from "../test/support/InMemory.js"
import { configLayer } from "../test/support/TestDatabase.js"

class CountingOps extends Supervisor.AbstractSupervisor<void> {
  ops = 0
  get value() {
    return Effect.void
  }
  override onEffect() {
    this.ops++
  }
}

const answer = {
  text: "ok",
  finishReason: "stop" as const,
  model: "openai/gpt-4o-mini",
  provider: "OpenAI",
  requestId: "gen-1",
  rateLimit: undefined,
  usage: { promptTokens: 29, completionTokens: 33, totalTokens: 62, cachedPromptTokens: 0, costUsd: Option.some(BigDecimal.unsafeFromString("0.00002415")) }
}

const instant = Layer.succeed(CompletionProvider, CompletionProvider.of({ complete: () => Effect.succeed(answer), keyInfo: Effect.die("not used") }))

const opsPerCall = (limiter: Layer.Layer<RateLimiter, never, never> | typeof RateLimiter.layer, calls = 100) =>
  Effect.gen(function*() {
    const ledger = yield* memoryLedger
    const scope = yield* Scope.make()
    const layer = LlmClient.layer.pipe(
      Layer.provide([instant, limiter, CircuitBreaker.layer, ledger.layer, unlimitedBudget, staticPricing]),
      Layer.provide(configLayer({ OPENROUTER_API_KEY: "sk-or-v1-ops", LLM_RATE_LIMIT_REQUESTS: "1000000", LLM_RATE_LIMIT_WINDOW_MS: "1000", LOG_LEVEL: "warning" }))
    )
    const client = Context.get(yield* Layer.buildWithScope(layer, scope), LlmClient)
    const call = client.generateCompletion({ messages: [{ role: "user", content: "x" }] })
    yield* Effect.repeatN(call, 49)
    const counting = new CountingOps()
    yield* Effect.repeatN(call, calls - 1).pipe(
      Effect.supervised(counting),
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
    return Math.round(counting.ops / calls)
  })

export const run = Effect.gen(function*() {
  return { withLimiter: yield* opsPerCall(RateLimiter.layer), passThroughLimiter: yield* opsPerCall(openRateLimiter) }
})

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  Effect.runPromise(run).then((figures) => console.table([figures]))
}
