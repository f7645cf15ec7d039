import { Array as Arr, BigDecimal, Clock, Context, Duration, Effect, Either, Exit, Layer, Metric, Option, Ref } from "effect"
import { BudgetGuard } from "../budget/BudgetGuard.js"
import { CurrentCaller } from "../domain/Caller.js"
import { CurrentJobItem } from "../domain/JobItem.js"
import { Config } from "../Config.js"
import type { CompletionRequest, CompletionResult, CompletionSuccess, CostSource, Priority, Usage } from "../domain/Completion.js"
import type { LlmError, UpstreamError } from "../domain/LlmError.js"
import { AiDisabled, BudgetExceeded, isTransient } from "../domain/LlmError.js"
import { format } from "../domain/Money.js"
import type { UsageRecord } from "../domain/UsageRecord.js"
import { Pricing } from "../usage/Pricing.js"
import { UsageRepo } from "../usage/UsageRepo.js"
import { CircuitBreaker } from "./CircuitBreaker.js"
import type { KeyInfo, ProviderRequest, ProviderUsage } from "./CompletionProvider.js"
import { CompletionProvider } from "./CompletionProvider.js"
import { taggedCounter } from "../metrics/TaggedCounter.js"
import { RateLimiter } from "./RateLimiter.js"
import { retryPolicy } from "./RetryPolicy.js"

export interface UpstreamHealth {
  readonly ok: boolean
  /** A fixed code, safe to show anyone: `key_rejected` is OpenRouter's 401 (or 403) to the key. */
  readonly reason: "key_accepted" | "no_api_key" | "key_rejected" | "unreachable"
  readonly detail: string
  readonly key: Option.Option<KeyInfo>
  /** The HTTP status of a failed check, when there was one. */
  readonly status: Option.Option<number>
}

const upstreamCalls = taggedCounter(Metric.counter("llm_upstream_calls_total", { description: "Upstream attempts by result" }), "result")
const retries = Metric.counter("llm_retries_total", { description: "Upstream attempts that were retries" })
const tokens = taggedCounter(Metric.counter("llm_tokens_total", { description: "Tokens reported by upstream, by kind and model" }), "kind", "model")
const costUsd = taggedCounter(
  Metric.counter("llm_cost_usd_total", {
    description: "Cost reported or priced, USD, by model; approximate (a float sum for dashboards): the exact decimal is in the ledger (GET /v1/usage)"
  }),
  "model"
)

const errorCode = (error: UpstreamError) => error.code ?? error._tag

/** Prompt tokens are estimated generously (3 characters a token) so the reservation is a ceiling. */
const estimatePromptTokens = (request: ProviderRequest) =>
  request.messages.reduce((n, m) => n + Math.ceil(m.content.length / 3) + 4, 0) +
  // A json_schema travels in the body and is billed as prompt too.
  (request.responseFormat?.type === "json_schema" ? Math.ceil(JSON.stringify(request.responseFormat.schema).length / 3) : 0)

/** The facts of an answer that its ledger row needs. */
export interface AnswerFacts {
  readonly model: string
  readonly provider: string | null
  readonly requestId: string | null
  readonly usage: ProviderUsage
}

/** One upstream exchange for the pipeline to run, once per attempt. */
export interface Exchange<A> {
  /** What the hard caps reserve for (its worst case) and what a failed attempt's row names. */
  readonly request: ProviderRequest
  readonly send: Effect.Effect<A, UpstreamError>
  readonly facts: (answer: A) => AnswerFacts
  /** Asked before each retry; a stream answers false once its caller has seen a byte. */
  readonly retryable?: Effect.Effect<boolean>
}

export interface PassThroughSuccess<A> {
  readonly answer: A
  readonly usage: Usage
  readonly attempts: number
}

export interface PassThroughFailure {
  readonly error: LlmError
  readonly attempts: number
}

interface CallContext {
  readonly purpose: string | null
  readonly caller: string | null
  /** Whose turn this attempt waits for at the rate limiter: the request's own owner, else its caller. */
  readonly owner: string | undefined
  readonly priority: Priority | undefined
  readonly counter: Ref.Ref<number>
}

export const make = Effect.gen(function*() {
  const config = yield* Config
  const provider = yield* CompletionProvider
  const limiter = yield* RateLimiter
  const circuit = yield* CircuitBreaker
  const budget = yield* BudgetGuard
  const ledger = yield* UsageRepo
  const pricing = yield* Pricing
  const { openrouter, llm } = config
  const schedule = retryPolicy(llm)

  const resolve = (request: CompletionRequest): ProviderRequest => ({
    messages: request.messages,
    model: request.model ?? openrouter.defaultModel,
    fallbackModels: request.fallbackModels ?? openrouter.fallbackModels,
    temperature: request.temperature ?? openrouter.temperature,
    maxTokens: request.maxTokens ?? openrouter.maxTokens,
    ...(request.responseFormat === undefined ? {} : { responseFormat: request.responseFormat })
  })

  const priced = (model: string, usage: ProviderUsage): Effect.Effect<Usage> =>
    Option.match(usage.costUsd, {
      onSome: (cost) => Effect.succeed({ ...usage, costUsd: Option.some(cost), costSource: "provider" as CostSource }),
      // Zero tokens priced would claim a known cost of zero for an answer nobody counted.
      onNone: () => usage.tokensUnknown === true ? Effect.succeed({ ...usage, costUsd: Option.none(), costSource: "unknown" as CostSource }) :
        Effect.map(pricing.costOf(model, usage), (cost) => ({
          ...usage,
          costUsd: cost,
          costSource: (Option.isSome(cost) ? "pricing" : "unknown") as CostSource
        }))
    })

  const worstCase = (request: ProviderRequest) =>
    Effect.map(
      Effect.forEach([request.model, ...request.fallbackModels], pricing.priceOf),
      (prices) => {
        const promptTokens = BigDecimal.fromBigInt(BigInt(estimatePromptTokens(request)))
        const maxTokens = BigDecimal.fromBigInt(BigInt(request.maxTokens))
        const costs = Arr.getSomes(prices).map((p) =>
          BigDecimal.sum(BigDecimal.sum(BigDecimal.multiply(promptTokens, p.prompt), BigDecimal.multiply(maxTokens, p.completion)), p.request)
        )
        return Arr.match(costs, { onEmpty: () => Option.none(), onNonEmpty: (all) => Option.some(Arr.reduce(all, all[0], BigDecimal.max)) })
      }
    )

  // With a hard cap, a call whose worst case cannot be priced is not made: it could overshoot unseen.
  const hardCap = Option.orElse(config.budget.hardLimitMonthlyUsd.pipe(Option.map((limit) => ({ budget: "monthly" as const, limit }))), () =>
    Option.map(config.budget.hardLimitDailyUsd, (limit) => ({ budget: "daily" as const, limit })))

  // Without a hard cap nothing is reserved, so the worst case is not worked out on every attempt.
  const reserve = (request: ProviderRequest, caller: string | null) => {
    const callerLimit = caller === null ? undefined : config.budget.callerMonthlyUsd.get(caller)
    if (Option.isNone(hardCap) && callerLimit === undefined) return budget.reserve(BigDecimal.fromBigInt(0n), caller)
    const { budget: period, limit } = Option.getOrElse(hardCap, () => ({ budget: "monthly" as const, limit: callerLimit! }))
    return Effect.flatMap(worstCase(request), (worst) =>
      Option.match(worst, {
        onSome: (amount) => budget.reserve(amount, caller),
        onNone: () =>
          Effect.fail(new BudgetExceeded({
            budget: period,
            limitUsd: format(limit),
            committedUsd: "unknown",
            requestedUsd: `unknown: no price for ${[request.model, ...request.fallbackModels].join(", ")}`,
            ...(Option.isNone(hardCap) && caller !== null ? { caller } : {})
          }))
      }))
  }

  const row = (fields: Omit<UsageRecord, "id" | "createdAt">) =>
    Effect.zipWith(Clock.currentTimeMillis, Effect.serviceOption(CurrentJobItem), (now, item): UsageRecord =>
      ({ ...fields, id: crypto.randomUUID(), createdAt: new Date(now), jobItemId: Option.match(item, { onNone: () => null, onSome: (i) => i.id }) }))

  const recordAnswer = (call: CallContext, attempt: number, latencyMs: number, answer: AnswerFacts) =>
    Effect.gen(function*() {
      const usage = yield* priced(answer.model, answer.usage)
      yield* ledger.record(yield* row({
        model: answer.model,
        provider: answer.provider,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        totalTokens: usage.totalTokens,
        costUsd: usage.costUsd,
        costSource: usage.costSource,
        requestId: answer.requestId,
        status: "success",
        errorCode: null,
        attempt,
        latencyMs,
        purpose: call.purpose,
        caller: call.caller
      }))
      yield* Metric.increment(upstreamCalls("success"))
      yield* Metric.incrementBy(tokens("prompt", answer.model), usage.promptTokens)
      yield* Metric.incrementBy(tokens("completion", answer.model), usage.completionTokens)
      if (Option.isSome(usage.costUsd)) yield* Metric.incrementBy(costUsd(answer.model), BigDecimal.unsafeToNumber(usage.costUsd.value))
      return usage
    })

  const recordFailure = (request: ProviderRequest, call: CallContext, attempt: number, latencyMs: number, error: UpstreamError | "interrupted") =>
    Effect.gen(function*() {
      const billed = error === "interrupted" ? undefined : error.usage
      const usage = billed === undefined ? undefined : yield* priced(error === "interrupted" ? request.model : error.model ?? request.model, billed)
      yield* ledger.record(yield* row({
        model: request.model,
        provider: error === "interrupted" ? null : error.provider ?? null,
        promptTokens: usage?.promptTokens ?? 0,
        completionTokens: usage?.completionTokens ?? 0,
        totalTokens: usage?.totalTokens ?? 0,
        // A failed attempt with no usage in its response was not billed: its cost is known, zero.
        costUsd: usage === undefined ? Option.some(BigDecimal.fromBigInt(0n)) : usage.costUsd,
        costSource: usage === undefined ? "provider" : usage.costSource,
        requestId: error === "interrupted" ? null : error.generationId ?? null,
        status: "error",
        errorCode: error === "interrupted" ? "interrupted" : errorCode(error),
        attempt,
        latencyMs,
        purpose: call.purpose,
        caller: call.caller
      }))
      yield* Metric.increment(upstreamCalls(error === "interrupted" ? "interrupted" : error._tag))
    })

  /**
   * One attempt: guarded, limited, recorded. Only the wait and the call itself can be interrupted
   * (a caller that went away); once upstream has answered, the row is written whatever happens,
   * and the budget reservation is released only after that.
   */
  const attemptOnce = <A>(exchange: Exchange<A>, call: CallContext) =>
    circuit.guard(Effect.gen(function*() {
      const { request } = exchange
      const reservation = yield* reserve(request, call.caller)
      return yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const attempt = yield* Ref.updateAndGet(call.counter, (n) => n + 1)
          if (attempt > 1) yield* Metric.increment(retries)
          const startedAt = yield* Clock.currentTimeMillis
          const elapsed = Effect.map(Clock.currentTimeMillis, (now) => now - startedAt)
          const exit = yield* restore(limiter.withPermit(
            Effect.exit(exchange.send).pipe(
              Effect.onInterrupt(() => Effect.flatMap(elapsed, (ms) => recordFailure(request, call, attempt, ms, "interrupted")))
            ),
            call.owner,
            call.priority
          ))
          const latencyMs = yield* elapsed
          if (Exit.isSuccess(exit)) {
            yield* Effect.all([circuit.recordSuccess, limiter.resume], { discard: true })
            const usage = yield* recordAnswer(call, attempt, latencyMs, exchange.facts(exit.value))
            return { answer: exit.value, usage }
          }
          const error = yield* Exit.match(exit, {
            onSuccess: () => Effect.die("unreachable"),
            onFailure: (cause) => Effect.flip(Effect.failCause(cause))
          })
          yield* recordFailure(request, call, attempt, latencyMs, error)
          yield* isTransient(error) ? circuit.recordTransientFailure : circuit.recordSuccess
          const resetAt = error._tag === "UpstreamRateLimited" && error.rateLimit?.remaining === 0 ? error.rateLimit.resetAtMs : undefined
          if (resetAt !== undefined) yield* limiter.pause(resetAt, `429 from ${error.provider ?? "upstream"}`)
          return yield* Effect.fail(error)
        })
      ).pipe(Effect.ensuring(budget.release(reservation)))
    }))

  const aiGuard: Effect.Effect<void, LlmError> = !llm.aiEnabled
    ? Effect.fail(new AiDisabled({ reason: "ai_disabled" }))
    : Option.isNone(openrouter.apiKey)
    ? Effect.fail(new AiDisabled({ reason: "no_api_key" }))
    : Effect.void

  /** The whole pipeline around any exchange: AI flag, then attempts with retries; the caller comes from the request's context. */
  const runExchange = <A>(exchange: Exchange<A>, purpose: string | null, counter: Ref.Ref<number>, owner?: string, priority?: Priority) =>
    Effect.gen(function*() {
      const caller = Option.match(yield* Effect.serviceOption(CurrentCaller), { onNone: () => null, onSome: (c) => c.name })
      const call: CallContext = { purpose, caller, counter, owner: owner ?? caller ?? undefined, priority }
      const attempts = attemptOnce(exchange, call)
      const retryable = exchange.retryable
      return yield* aiGuard.pipe(Effect.zipRight(
        retryable === undefined ? Effect.retry(attempts, schedule) : Effect.retry(attempts, { schedule, while: () => retryable })
      ))
    })

  const passThrough = <A>(exchange: Exchange<A>, purpose: string) =>
    Effect.gen(function*() {
      const counter = yield* Ref.make(0)
      const outcome = yield* Effect.either(runExchange(exchange, purpose, counter))
      const attempts = yield* Ref.get(counter)
      return Either.match(outcome, {
        onRight: ({ answer, usage }) => Effect.succeed({ answer, usage, attempts }),
        onLeft: (error) => Effect.fail({ error, attempts })
      })
    }).pipe(Effect.flatten)

  const run = (request: CompletionRequest): Effect.Effect<CompletionResult> =>
    Effect.gen(function*() {
      const startedAt = yield* Clock.currentTimeMillis
      const counter = yield* Ref.make(0)
      const resolved = resolve(request)
      const outcome = yield* Effect.either(runExchange({ request: resolved, send: provider.complete(resolved), facts: (a) => a }, request.purpose ?? null, counter, request.owner, request.priority))
      const latencyMs = (yield* Clock.currentTimeMillis) - startedAt
      const attempts = yield* Ref.get(counter)
      return Either.match(outcome, {
        onRight: ({ answer, usage }): CompletionResult => ({
          status: "success",
          text: answer.text,
          finishReason: answer.finishReason,
          model: answer.model,
          provider: answer.provider,
          requestId: answer.requestId,
          usage,
          latencyMs,
          attempts
        }),
        onLeft: (error): CompletionResult => ({ status: "error", error, latencyMs, attempts })
      })
    })

  const generateCompletion = (request: CompletionRequest) =>
    Effect.flatMap(run(request), (result) => result.status === "success" ? Effect.succeed(result) : Effect.fail(result.error))

  const upstreamHealth = yield* Effect.cachedWithTTL(
    Option.isNone(openrouter.apiKey)
      ? Effect.succeed<UpstreamHealth>({ ok: false, reason: "no_api_key", detail: "no API key: AI is off", key: Option.none(), status: Option.none() })
      : provider.keyInfo.pipe(
        Effect.map((key): UpstreamHealth => ({ ok: true, reason: "key_accepted", detail: "key accepted", key: Option.some(key), status: Option.none() })),
        Effect.catchAll((error) =>
          Effect.succeed<UpstreamHealth>({
            ok: false,
            reason: error._tag === "UpstreamRejected" && (error.status === 401 || error.status === 403) ? "key_rejected" : "unreachable",
            detail: `${error._tag}: ${error.message}`,
            key: Option.none(),
            status: Option.fromNullable(error.status)
          })
        )
      ),
    Duration.seconds(30)
  )

  // The key's own rate limit, when OpenRouter reports one, binds from the start.
  yield* upstreamHealth.pipe(
    Effect.flatMap((health) => Option.match(Option.flatMap(health.key, (k) => k.rateLimit), {
      onNone: () => Effect.void,
      onSome: ({ requests, windowMs }) => limiter.adoptProviderLimit(requests, windowMs)
    })),
    Effect.forkScoped
  )

  return LlmClient.of({ generateCompletion, generateCompletionResult: run, passThrough, upstreamHealth })
})

/**
 * The provider-agnostic way to call a model. Every upstream attempt passes the circuit breaker,
 * the hard budget and the rate limiter, and is written to the ledger before the next step: there
 * is no path to the model that skips them.
 */
export class LlmClient extends Context.Tag("LlmClient")<LlmClient, {
  readonly generateCompletion: (request: CompletionRequest) => Effect.Effect<CompletionSuccess, LlmError>
  /** Never fails: the error comes back as a `CompletionResult` with `status: "error"`. */
  readonly generateCompletionResult: (request: CompletionRequest) => Effect.Effect<CompletionResult>
  /**
   * Any other exchange with upstream (the OpenAI-compatible gateway's raw pass-through) through the
   * same pipeline: AI flag, circuit, hard caps, rate limiter, retries and one ledger row per attempt.
   * Fails with the last error and the number of attempts made.
   */
  readonly passThrough: <A>(exchange: Exchange<A>, purpose: string) => Effect.Effect<PassThroughSuccess<A>, PassThroughFailure>
  /** The key and endpoint check of `GET {base}/key`, cached briefly: readiness probes call it often. */
  readonly upstreamHealth: Effect.Effect<UpstreamHealth>
}>() {
  static readonly layer = Layer.scoped(LlmClient, Effect.suspend(() => make))
}

