import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Clock, Deferred, Effect, Exit, Fiber, Layer, Option, Ref, TestClock } from "effect"
import type { UpstreamError } from "../../../src/domain/LlmError.js"
import {
  UpstreamInvalidResponse,
  UpstreamNetworkError,
  UpstreamQuotaExhausted,
  UpstreamRateLimited,
  UpstreamRejected,
  UpstreamServerError,
  UpstreamTimeout,
  UpstreamUnusableAnswer
} from "../../../src/domain/LlmError.js"
import { format } from "../../../src/domain/Money.js"
import type { ProviderAnswer } from "../../../src/llm/CompletionProvider.js"
import { CompletionProvider } from "../../../src/llm/CompletionProvider.js"
import { LlmClient } from "../../../src/llm/LlmClient.js"
import { BudgetGuard } from "../../../src/budget/BudgetGuard.js"
import type { UsageRecord } from "../../../src/domain/UsageRecord.js"
import { UsageRepo } from "../../../src/usage/UsageRepo.js"
import { closedCircuit, memoryLedger, openRateLimiter, staticPricing, unlimitedBudget } from "../../support/InMemory.js"
import { configLayer } from "../../support/TestDatabase.js"

const answer: ProviderAnswer = {
  text: "The policy now shares data with partners.",
  finishReason: "stop",
  model: "openai/gpt-4o-mini",
  provider: "OpenAI",
  requestId: "gen-1764926476-0N0195qHFzGljvYKVijc",
  usage: { promptTokens: 29, completionTokens: 33, totalTokens: 62, cachedPromptTokens: 0, costUsd: Option.some(BigDecimal.unsafeFromString("0.00002415")) },
  rateLimit: undefined
}

/** A provider that fails with `script` in order, then answers; it notes the virtual time of each call. */
const scripted = (script: ReadonlyArray<UpstreamError>, then: ProviderAnswer = answer) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make<ReadonlyArray<number>>([])
    const layer = Layer.succeed(CompletionProvider, CompletionProvider.of({
      complete: () =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const n = (yield* Ref.getAndUpdate(calls, (c) => [...c, now])).length
          return n < script.length ? yield* Effect.fail(script[n]!) : then
        }),
      keyInfo: Effect.die("not used")
    }))
    return { calls, layer }
  })

const run = <A, E>(
  script: ReadonlyArray<UpstreamError>,
  use: (client: LlmClient["Type"]) => Effect.Effect<A, E>,
  env: Record<string, string> = {}
) =>
  Effect.gen(function*() {
    const provider = yield* scripted(script)
    const ledger = yield* memoryLedger
    const layer = LlmClient.layer.pipe(
      Layer.provide([provider.layer, ledger.layer, openRateLimiter, closedCircuit, unlimitedBudget, staticPricing]),
      Layer.provide(configLayer({ OPENROUTER_API_KEY: "sk-or-v1-test", ...env }))
    )
    const fiber = yield* Effect.fork(Effect.flatMap(LlmClient, use).pipe(Effect.provide(layer)))
    yield* TestClock.adjust("10 minutes")
    const result = yield* fiber.await
    return { result, calls: yield* Ref.get(provider.calls), rows: yield* Ref.get(ledger.rows) }
  })

// Compared by what a caller sees: vitest cannot diff Effect's error objects.
const tagOf = (e: { readonly _tag: string; readonly status?: number }) => [e._tag, e.status]

const fields = { message: "failed", model: "openai/gpt-4o-mini" }

const transient: ReadonlyArray<[string, UpstreamError]> = [
  ["timeout", new UpstreamTimeout(fields)],
  ["connection reset", new UpstreamNetworkError({ ...fields, code: "ECONNRESET" })],
  ["408", new UpstreamTimeout({ ...fields, status: 408 })],
  ["429", new UpstreamRateLimited({ ...fields, status: 429 })],
  ["500", new UpstreamServerError({ ...fields, status: 500 })],
  ["502", new UpstreamServerError({ ...fields, status: 502 })],
  ["503", new UpstreamServerError({ ...fields, status: 503 })],
  ["504", new UpstreamServerError({ ...fields, status: 504 })],
  ["error inside a 200", new UpstreamInvalidResponse({ ...fields, status: 200 })]
]

const permanent: ReadonlyArray<[string, UpstreamError]> = [
  ["400", new UpstreamRejected({ ...fields, status: 400 })],
  ["401", new UpstreamRejected({ ...fields, status: 401 })],
  ["402", new UpstreamRejected({ ...fields, status: 402 })],
  ["403 moderation", new UpstreamRejected({ ...fields, status: 403 })],
  ["404", new UpstreamRejected({ ...fields, status: 404 })],
  ["daily quota", new UpstreamQuotaExhausted({ ...fields, status: 429 })],
  ["content filtered to nothing", new UpstreamUnusableAnswer({ ...fields, status: 200 })]
]

describe("LlmClient", () => {
  it.effect("returns the text, served model, id, tokens, exact cost and one ledger row", () =>
    Effect.gen(function*() {
      const { calls, result, rows } = yield* run([], (c) => c.generateCompletion({ messages: [{ role: "user", content: "diff" }] }))
      expect(calls).toHaveLength(1)
      const value = yield* result
      expect(value).toMatchObject({ text: answer.text, model: "openai/gpt-4o-mini", provider: "OpenAI", requestId: answer.requestId, attempts: 1 })
      expect(format(Option.getOrThrow(value.usage.costUsd))).toBe("0.00002415")
      expect(value.usage.costSource).toBe("provider")
      expect(rows.map((r) => [r.status, r.attempt, r.requestId, r.costSource])).toEqual([["success", 1, answer.requestId, "provider"]])
    }))

  it.effect("backs off 1 s, 2 s, 4 s, then fails after 3 retries", () =>
    Effect.gen(function*() {
      const error = new UpstreamServerError({ ...fields, status: 503 })
      const { calls, result, rows } = yield* run([error, error, error, error], (c) => c.generateCompletion({ messages: [] }))
      expect(calls).toEqual([0, 1000, 3000, 7000])
      expect(tagOf(yield* Effect.flip(result))).toEqual(tagOf(error))
      expect(rows.map((r) => [r.status, r.attempt, r.errorCode])).toEqual([1, 2, 3, 4].map((n) => ["error", n, "UpstreamServerError"]))
    }))

  for (const [name, error] of transient) {
    it.effect(`retries ${name} and succeeds`, () =>
      Effect.gen(function*() {
        const { calls, result } = yield* run([error], (c) => c.generateCompletion({ messages: [] }))
        expect(calls).toEqual([0, 1000])
        expect((yield* result).attempts).toBe(2)
      }))
  }

  for (const [name, error] of permanent) {
    it.effect(`does not retry ${name}`, () =>
      Effect.gen(function*() {
        const { calls, result, rows } = yield* run([error], (c) => c.generateCompletion({ messages: [] }))
        expect(calls).toEqual([0])
        expect(tagOf(yield* Effect.flip(result))).toEqual(tagOf(error))
        expect(rows).toHaveLength(1)
      }))
  }

  it.effect("waits as long as Retry-After asks when that is longer than the backoff", () =>
    Effect.gen(function*() {
      const limited = new UpstreamRateLimited({ ...fields, status: 429, rateLimit: { retryAfterMs: 5_000 } })
      const { calls } = yield* run([limited], (c) => c.generateCompletion({ messages: [] }))
      expect(calls).toEqual([0, 5000])
    }))

  it.effect("waits until X-RateLimit-Reset (Unix ms) when it is later than the backoff", () =>
    Effect.gen(function*() {
      const limited = new UpstreamRateLimited({ ...fields, status: 429, rateLimit: { remaining: 0, resetAtMs: 12_000 } })
      const { calls } = yield* run([limited], (c) => c.generateCompletion({ messages: [] }))
      expect(calls).toEqual([0, 12_000])
    }))

  it.effect("fails at once when the provider asks for a wait beyond LLM_RETRY_MAX_WAIT_MS", () =>
    Effect.gen(function*() {
      const limited = new UpstreamRateLimited({ ...fields, status: 429, rateLimit: { retryAfterMs: 120_000 } })
      const { calls, result } = yield* run([limited], (c) => c.generateCompletion({ messages: [] }), { LLM_RETRY_MAX_WAIT_MS: "60000" })
      expect(calls).toEqual([0])
      expect((yield* Effect.flip(result))._tag).toBe("UpstreamRateLimited")
    }))

  it.effect("follows LLM_MAX_RETRIES and LLM_RETRY_BASE_MS", () =>
    Effect.gen(function*() {
      const error = new UpstreamTimeout(fields)
      const { calls } = yield* run([error, error, error], (c) => c.generateCompletion({ messages: [] }), {
        LLM_MAX_RETRIES: "1",
        LLM_RETRY_BASE_MS: "250"
      })
      expect(calls).toEqual([0, 250])
    }))

  it.effect("the never-failing variant carries the error status and attempt count", () =>
    Effect.gen(function*() {
      const error = new UpstreamRejected({ ...fields, status: 401 })
      const { result } = yield* run([error], (c) => c.generateCompletionResult({ messages: [] }))
      expect(yield* result).toMatchObject({ status: "error", error: { _tag: "UpstreamRejected", status: 401 }, attempts: 1 })
    }))

  it.effect("without a key or with AI off, no call is made", () =>
    Effect.gen(function*() {
      const off = yield* run([], (c) => c.generateCompletionResult({ messages: [] }), { AI_ENABLED: "false" })
      expect(off.calls).toHaveLength(0)
      expect(yield* off.result).toMatchObject({ status: "error", error: { _tag: "AiDisabled", reason: "ai_disabled" } })
      const noKey = yield* run([], (c) => c.generateCompletionResult({ messages: [] }), { OPENROUTER_API_KEY: "" })
      expect(noKey.calls).toHaveLength(0)
      expect(yield* noKey.result).toMatchObject({ status: "error", error: { reason: "no_api_key" } })
    }))

  it.effect("with a hard cap, refuses a model it cannot price instead of calling it", () =>
    Effect.gen(function*() {
      const { calls, result } = yield* run([], (c) => c.generateCompletion({ messages: [], model: "someone/unpriced" }), {
        COST_HARD_LIMIT_MONTHLY_USD: "10"
      })
      expect(calls).toHaveLength(0)
      expect(yield* Effect.flip(result)).toMatchObject({ _tag: "BudgetExceeded", budget: "monthly", committedUsd: "unknown" })
      const uncapped = yield* run([], (c) => c.generateCompletion({ messages: [], model: "someone/unpriced" }))
      expect(uncapped.calls).toHaveLength(1)
    }))

  it.effect("with a hard cap, the worst case reserved counts a json_schema sent in the body as prompt tokens", () =>
    Effect.gen(function*() {
      const reserved = yield* Ref.make<ReadonlyArray<string>>([])
      const budget = Layer.succeed(BudgetGuard, BudgetGuard.of({
        reserve: (amountUsd) => Effect.as(Ref.update(reserved, (all) => [...all, format(amountUsd)]), { id: "r", amountUsd }),
        release: () => Effect.void,
        exhausted: Effect.succeed(Option.none()),
        status: Effect.succeed([]),
        capState: () => Effect.succeed([])
      }))
      const provider = yield* scripted([])
      const ledger = yield* memoryLedger
      const layer = LlmClient.layer.pipe(
        Layer.provide([provider.layer, ledger.layer, openRateLimiter, closedCircuit, budget, staticPricing]),
        Layer.provide(configLayer({ OPENROUTER_API_KEY: "sk-or-v1-test", COST_HARD_LIMIT_MONTHLY_USD: "10", OPENROUTER_MAX_TOKENS: "100" }))
      )
      const schema = { type: "object", description: "x".repeat(3000) }
      const messages = [{ role: "user" as const, content: "y".repeat(300) }]
      yield* Effect.flatMap(LlmClient, (c) =>
        Effect.zip(
          c.generateCompletion({ messages }),
          c.generateCompletion({ messages, responseFormat: { type: "json_schema", name: "s", schema } })
        )).pipe(Effect.provide(layer))
      const [plain, withSchema] = (yield* Ref.get(reserved)).map((usd) => BigDecimal.unsafeFromString(usd))
      // 104 estimated prompt tokens and 100 completion tokens, then about 1,010 more tokens of schema at 0.15 USD per million.
      expect(format(plain!)).toBe("0.0000756")
      expect(BigDecimal.greaterThan(BigDecimal.subtract(withSchema!, plain!), BigDecimal.unsafeFromString("0.00015"))).toBe(true)
    }))

  it.effect("prices a response without usage.cost from the price table, or stores the cost as unknown", () =>
    Effect.gen(function*() {
      const noCost = { ...answer, usage: { ...answer.usage, costUsd: Option.none() } }
      const provider = yield* scripted([], noCost)
      const ledger = yield* memoryLedger
      const layer = LlmClient.layer.pipe(
        Layer.provide([provider.layer, ledger.layer, openRateLimiter, closedCircuit, unlimitedBudget, staticPricing]),
        Layer.provide(configLayer({ OPENROUTER_API_KEY: "sk-or-v1-test" }))
      )
      const priced = yield* Effect.flatMap(LlmClient, (c) => c.generateCompletion({ messages: [] })).pipe(Effect.provide(layer))
      expect(priced.usage.costSource).toBe("pricing")
      expect(format(Option.getOrThrow(priced.usage.costUsd))).toBe("0.00002415")
      const unknownModel = { ...noCost, model: "someone/unpriced" }
      const other = yield* scripted([], unknownModel)
      const unknown = yield* Effect.flatMap(LlmClient, (c) => c.generateCompletion({ messages: [] })).pipe(
        Effect.provide(LlmClient.layer.pipe(
          Layer.provide([other.layer, ledger.layer, openRateLimiter, closedCircuit, unlimitedBudget, staticPricing]),
          Layer.provide(configLayer({ OPENROUTER_API_KEY: "sk-or-v1-test" }))
        ))
      )
      expect(unknown.usage).toMatchObject({ costSource: "unknown", costUsd: Option.none() })
      const stored = yield* Ref.get(ledger.rows)
      expect(stored.map((r) => [r.costSource, Option.getOrNull(Option.map(r.costUsd, format))])).toEqual([["pricing", "0.00002415"], ["unknown", null]])
    }))

  it.effect("an answer too large to read is recorded with an unknown cost, not a cost of 0", () =>
    Effect.gen(function*() {
      const tooLarge = new UpstreamUnusableAnswer({ ...fields, code: "response_too_large" })
      const { rows } = yield* run([tooLarge], (c) => c.generateCompletionResult({ messages: [] }))
      expect(rows.map((r) => [r.status, r.errorCode, r.costSource, Option.getOrNull(Option.map(r.costUsd, format))]))
        .toEqual([["error", "response_too_large", "unknown", null]])
    }))
})

describe("LlmClient: interruptions", () => {
  /** The client over a provider and a ledger the test holds: the answer waits on `answered`, each commit on `committed`. */
  const held = Effect.gen(function*() {
    const calling = yield* Deferred.make<void>()
    const answered = yield* Deferred.make<void>()
    const committing = yield* Deferred.make<void>()
    const committed = yield* Deferred.make<void>()
    const rows = yield* Ref.make<ReadonlyArray<UsageRecord>>([])
    const provider = Layer.succeed(CompletionProvider, CompletionProvider.of({
      complete: () => Deferred.succeed(calling, undefined).pipe(Effect.zipRight(Deferred.await(answered)), Effect.as(answer)),
      keyInfo: Effect.die("not used")
    }))
    const ledger = Layer.succeed(UsageRepo, UsageRepo.of({
      record: (row) => Deferred.succeed(committing, undefined).pipe(Effect.zipRight(Deferred.await(committed)), Effect.zipRight(Ref.update(rows, (all) => [...all, row]))),
      totals: () => Effect.die("not used"),
      spend: () => Effect.die("not used"),
      callerSpend: () => Effect.die("not used"),
      recent: () => Effect.die("not used"),
      spoolDepth: Effect.succeed(0)
    }))
    const client = yield* Effect.provide(LlmClient, LlmClient.layer.pipe(
      Layer.provide([provider, ledger, openRateLimiter, closedCircuit, unlimitedBudget, staticPricing]),
      Layer.provide(configLayer({ OPENROUTER_API_KEY: "sk-or-v1-test" }))
    ))
    return { client, calling, answered, committing, committed, rows }
  })

  it.scoped("a caller that goes away after upstream answered still gets its attempt's row written", () =>
    Effect.gen(function*() {
      const { answered, client, committed, committing, rows } = yield* held
      const fiber = yield* Effect.fork(client.generateCompletion({ messages: [] }))
      yield* Deferred.succeed(answered, undefined)
      yield* Deferred.await(committing)
      const interrupting = yield* Effect.fork(Fiber.interrupt(fiber))
      yield* Deferred.succeed(committed, undefined)
      const exit = yield* Fiber.join(interrupting)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect((yield* Ref.get(rows)).map((r) => [r.status, r.requestId])).toEqual([["success", answer.requestId]])
    }))

  it.scoped("a caller that goes away while upstream is still answering leaves an interrupted row", () =>
    Effect.gen(function*() {
      const { calling, client, committed, rows } = yield* held
      yield* Deferred.succeed(committed, undefined)
      const fiber = yield* Effect.fork(client.generateCompletion({ messages: [] }))
      yield* Deferred.await(calling)
      yield* Fiber.interrupt(fiber)
      expect((yield* Ref.get(rows)).map((r) => [r.status, r.errorCode, r.attempt, Option.isNone(r.costUsd), r.costSource])).toEqual([["error", "interrupted", 1, true, "unknown"]])
    }))
})
