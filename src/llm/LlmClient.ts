import { Array as Arr, BigDecimal, Cause, Clock, Context, Duration, Effect, Exit, Layer, Metric, Option } from "effect"
import { BudgetGuard } from "../budget/BudgetGuard.js"
import { CurrentCaller } from "../domain/Caller.js"
import { CurrentJobItem } from "../domain/JobItem.js"
import { Config } from "../Config.js"
import type { CompletionRequest, CompletionResult, CompletionSuccess, CostSource, Priority, Usage } from "../domain/Completion.js"
import type { LlmError, UpstreamError } from "../domain/LlmError.js"
import { AiDisabled, BudgetExceeded, isTransient } from "../domain/LlmError.js"
import { format } from "../domain/Money.js"
import type { UsageRecord } from "../domain/UsageRecord.js"
import { Pricing } from "./Pricing.js"
import { UsageRepo } from "../usage/UsageRepo.js"
import { CircuitBreaker } from "./CircuitBreaker.js"
import type { KeyInfo, ProviderRequest, ProviderUsage } from "./CompletionProvider.js"
import { CompletionProvider } from "./CompletionProvider.js"
import { taggedMetric } from "../metrics/TaggedMetric.js"
import * as Spans from "../telemetry/Spans.js"
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

const upstreamCalls = taggedMetric(Metric.counter("llm_upstream_calls_total", { description: "Upstream attempts by result" }), "result")
const retries = Metric.counter("llm_retries_total", { description: "Upstream attempts that were retries" })
const tokens = taggedMetric(Metric.counter("llm_tokens_total", { description: "Tokens reported by upstream, by kind and model" }), "kind", "model")
const costUsd = taggedMetric(
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
  /** The summary-job item the call is for (`CurrentJobItem`), on its ledger rows. */
  readonly jobItemId: string | null
  /** Whose turn this attempt waits for at the rate limiter: the request's own owner, else its caller. */
  readonly owner: string | undefined
  readonly priority: Priority | undefined
  /** Attempts made so far; one fiber makes them in turn, so a plain number. */
  attempts: number
}

/** How one attempt ended, recorded once: its ledger row, its metrics, what the circuit and limiter learn. */
type Outcome<A> =
  | { readonly _tag: "Answered"; readonly answer: A }
  | { readonly _tag: "Failed"; readonly error: UpstreamError }
  | { readonly _tag: "Interrupted"; readonly cause: Cause.Cause<never> }

type Unanswered = Exclude<Outcome<unknown>, { readonly _tag: "Answered" }>

/** A defect is no outcome: it is not recorded and travels on as it is. */
interface Defect {
  readonly _tag: "Defect"
  readonly cause: Cause.Cause<UpstreamError>
}

const outcomeOf = <A>(exit: Exit.Exit<A, UpstreamError>): Outcome<A> | Defect => {
  if (Exit.isSuccess(exit)) return { _tag: "Answered", answer: exit.value }
  if (Cause.isInterruptedOnly(exit.cause)) return { _tag: "Interrupted", cause: exit.cause as Cause.Cause<never> }
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) ? { _tag: "Failed", error: failure.value } : { _tag: "Defect", cause: exit.cause }
}

/** What an attempt without usage in its answer cost: nothing billed, or unknown when the answer was not read. */
const unbilled = (outcome: Unanswered): Pick<Usage, "costUsd" | "costSource"> =>
  // Too large to read, or cut off by its caller while upstream was answering: upstream may have
  // billed, and how much is not known. A failure upstream answered with an error costs nothing.
  outcome._tag === "Interrupted" || outcome.error.code === "response_too_large"
    ? { costUsd: Option.none(), costSource: "unknown" }
    : { costUsd: Option.some(BigDecimal.fromBigInt(0n)), costSource: "provider" }

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

  const callerLimitOf = (caller: string | null) => caller === null ? undefined : config.budget.callerMonthlyUsd.get(caller)

  /** Whether a cap binds this caller's calls; without one nothing is reserved, and the worst case is not worked out. */
  const capped = (caller: string | null) => Option.isSome(hardCap) || callerLimitOf(caller) !== undefined

  const reserve = (request: ProviderRequest, caller: string | null) => {
    const callerLimit = callerLimitOf(caller)
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

  const row = (clock: Clock.Clock, call: CallContext, attempt: number, latencyMs: number, fields: Omit<UsageRecord, "id" | "createdAt" | "attempt" | "latencyMs" | "purpose" | "caller" | "jobItemId">): UsageRecord => ({
    ...fields,
    id: crypto.randomUUID(),
    createdAt: new Date(clock.unsafeCurrentTimeMillis()),
    attempt,
    latencyMs,
    purpose: call.purpose,
    caller: call.caller,
    jobItemId: call.jobItemId
  })

  const countAnswer = (model: string, usage: Usage) => {
    upstreamCalls("success").unsafeUpdate(1, [])
    tokens("prompt", model).unsafeUpdate(usage.promptTokens, [])
    tokens("completion", model).unsafeUpdate(usage.completionTokens, [])
    if (Option.isSome(usage.costUsd)) costUsd(model).unsafeUpdate(BigDecimal.unsafeToNumber(usage.costUsd.value), [])
  }

  const recordAnswer = <A>(exchange: Exchange<A>, call: CallContext, attempt: number, latencyMs: number, clock: Clock.Clock, answer: A) => {
    const facts = exchange.facts(answer)
    return circuit.recordSuccess.pipe(
      Effect.zipRight(limiter.resume),
      Effect.zipRight(priced(facts.model, facts.usage)),
      Effect.tap((usage) =>
        ledger.record(row(clock, call, attempt, latencyMs, {
          model: facts.model,
          provider: facts.provider,
          promptTokens: usage.promptTokens,
          completionTokens: usage.completionTokens,
          totalTokens: usage.totalTokens,
          costUsd: usage.costUsd,
          costSource: usage.costSource,
          requestId: facts.requestId,
          status: "success",
          errorCode: null
        }))
      ),
      Effect.map((usage) => {
        countAnswer(facts.model, usage)
        return { answer, usage }
      })
    )
  }

  /** The row of an attempt that brought no answer: it failed, or its caller went away during the call. */
  const recordUnanswered = (request: ProviderRequest, call: CallContext, attempt: number, latencyMs: number, clock: Clock.Clock, outcome: Unanswered) => {
    const error = outcome._tag === "Failed" ? outcome.error : undefined
    const result = error === undefined ? "interrupted" : error._tag
    const usage: Effect.Effect<Pick<Usage, "promptTokens" | "completionTokens" | "totalTokens" | "costUsd" | "costSource">> = error?.usage === undefined
      ? Effect.succeed({ promptTokens: 0, completionTokens: 0, totalTokens: 0, ...unbilled(outcome) })
      : priced(error.model ?? request.model, error.usage)
    return Effect.flatMap(usage, (usage) => {
      upstreamCalls(result).unsafeUpdate(1, [])
      return ledger.record(row(clock, call, attempt, latencyMs, {
        model: request.model,
        provider: error?.provider ?? null,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        totalTokens: usage.totalTokens,
        costUsd: usage.costUsd,
        costSource: usage.costSource,
        requestId: error?.generationId ?? null,
        status: "error",
        errorCode: error === undefined ? "interrupted" : errorCode(error)
      }))
    })
  }

  /** What the circuit and the limiter learn from a failure: a transient one counts, a 429 with nothing left pauses everyone. */
  const learn = (error: UpstreamError) => {
    const resetAt = error._tag === "UpstreamRateLimited" && error.rateLimit?.remaining === 0 ? error.rateLimit.resetAtMs : undefined
    const circuitLearns = isTransient(error) ? circuit.recordTransientFailure : circuit.recordSuccess
    return resetAt === undefined ? circuitLearns : Effect.zipRight(circuitLearns, limiter.pause(resetAt, `429 from ${error.provider ?? "upstream"}`))
  }

  /** The one place an attempt's outcome is recorded; runs uninterruptibly, so the row is written whatever happens. */
  const settle = <A>(
    exchange: Exchange<A>,
    call: CallContext,
    attempt: number,
    startedAt: number,
    clock: Clock.Clock,
    exit: Exit.Exit<A, UpstreamError>
  ): Effect.Effect<{ readonly answer: A; readonly usage: Usage }, UpstreamError> => {
    const latencyMs = clock.unsafeCurrentTimeMillis() - startedAt
    const outcome = outcomeOf(exit)
    switch (outcome._tag) {
      case "Answered":
        return recordAnswer(exchange, call, attempt, latencyMs, clock, outcome.answer)
      case "Failed":
        return recordUnanswered(exchange.request, call, attempt, latencyMs, clock, outcome).pipe(
          Effect.zipRight(learn(outcome.error)),
          Effect.zipRight(Effect.fail(outcome.error))
        )
      case "Interrupted":
        return Effect.zipRight(recordUnanswered(exchange.request, call, attempt, latencyMs, clock, outcome), Effect.failCause(outcome.cause))
      case "Defect":
        return Effect.failCause(outcome.cause)
    }
  }

  /**
   * One attempt: guarded, limited, recorded. Only the wait and the call itself can be interrupted
   * (a caller that went away); once upstream has answered, the row is written whatever happens.
   * With a hard cap, the worst case is reserved first and released after the row (reserve, call,
   * release); without one nothing is reserved.
   */
  const attemptOnce = <A>(exchange: Exchange<A>, call: CallContext): Effect.Effect<{ readonly answer: A; readonly usage: Usage }, LlmError> => {
    const attempt = Effect.clockWith((clock) => {
      const n = ++call.attempts
      if (n > 1) retries.unsafeUpdate(1, [])
      const startedAt = clock.unsafeCurrentTimeMillis()
      return Spans.limiterWait((entered) =>
        limiter.withPermit(
          entered(Effect.uninterruptibleMask((restore) => Effect.flatMap(Effect.exit(restore(exchange.send)), (exit) => settle(exchange, call, n, startedAt, clock, exit)))),
          call.owner,
          call.priority
        )
      )
    })
    return circuit.guard(
      capped(call.caller) ? Effect.acquireUseRelease(reserve(exchange.request, call.caller), () => attempt, budget.release) : attempt
    ).pipe(Spans.attempt(Effect.sync(() => call.attempts), exchange.request.model, call.purpose))
  }

  const aiGuard: Effect.Effect<void, LlmError> = !llm.aiEnabled
    ? Effect.fail(new AiDisabled({ reason: "ai_disabled" }))
    : Option.isNone(openrouter.apiKey)
    ? Effect.fail(new AiDisabled({ reason: "no_api_key" }))
    : Effect.void

  /** The caller of the request's context: read here only. */
  const callerOf = Effect.map(Effect.serviceOption(CurrentCaller), Option.match({ onNone: () => null, onSome: (c) => c.name }))

  /**
   * The whole pipeline around any exchange: AI flag, then attempts. The retry schedule is set up
   * only after a first failure, which it is then fed first, so it sees the same errors as before.
   */
  const runExchange = <A>(exchange: Exchange<A>, call: CallContext) => {
    const attempt = attemptOnce(exchange, call)
    const retried = Effect.catchAll(attempt, (first) => {
      let fed = false
      const again = Effect.suspend(() => (fed ? attempt : ((fed = true), Effect.fail(first))))
      return exchange.retryable === undefined
        ? Effect.retry(again, schedule)
        : Effect.retry(again, { schedule, while: () => exchange.retryable! })
    })
    return aiGuard === Effect.void ? retried : Effect.zipRight(aiGuard, retried)
  }

  const jobItemOf = Effect.map(Effect.serviceOption(CurrentJobItem), Option.match({ onNone: () => null, onSome: (i) => i.id }))

  const callContext = (purpose: string | null, owner?: string, priority?: Priority) =>
    Effect.zipWith(callerOf, jobItemOf, (caller, jobItemId): CallContext => ({ purpose, caller, jobItemId, owner: owner ?? caller ?? undefined, priority, attempts: 0 }))

  const passThrough = <A>(exchange: Exchange<A>, purpose: string) =>
    Effect.flatMap(callContext(purpose), (call) =>
      runExchange(exchange, call).pipe(
        Effect.mapBoth({
          onSuccess: ({ answer, usage }) => ({ answer, usage, attempts: call.attempts }),
          onFailure: (error) => ({ error, attempts: call.attempts })
        })
      ))

  const run = (request: CompletionRequest): Effect.Effect<CompletionResult> =>
    Effect.clockWith((clock) => {
      const startedAt = clock.unsafeCurrentTimeMillis()
      const resolved = resolve(request)
      return Effect.flatMap(callContext(request.purpose ?? null, request.owner, request.priority), (call) =>
        runExchange({ request: resolved, send: provider.complete(resolved), facts: (a) => a }, call).pipe(
          Effect.match({
            onSuccess: ({ answer, usage }): CompletionResult => ({
              status: "success",
              text: answer.text,
              finishReason: answer.finishReason,
              model: answer.model,
              provider: answer.provider,
              requestId: answer.requestId,
              usage,
              latencyMs: clock.unsafeCurrentTimeMillis() - startedAt,
              attempts: call.attempts
            }),
            onFailure: (error): CompletionResult => ({ status: "error", error, latencyMs: clock.unsafeCurrentTimeMillis() - startedAt, attempts: call.attempts })
          })
        ))
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

