import { Array as Arr, BigDecimal, Clock, Context, Effect, Either, Layer, Metric, Option } from "effect"
import { createHash } from "node:crypto"
import { Config } from "../Config.js"
import type { ChatMessage, CompletionSuccess, Priority, ResponseFormat } from "../domain/Completion.js"
import type { LlmError, RateLimitQueueFull } from "../domain/LlmError.js"
import { formatOption } from "../domain/Money.js"
import { LlmClient } from "../llm/LlmClient.js"
import { Pricing } from "../llm/Pricing.js"
import type { InvalidDiff } from "./Change.js"
import { ChangeProcessor } from "./ChangeProcessor.js"
import type { DocumentInfo } from "./Prompt.js"
import { buildCombineMessages, buildMessages, overheadTokens, PROMPT_VERSION, STRUCTURED_PROMPT_VERSION } from "./Prompt.js"
import { detailOf, reasonOf } from "./Fallback.js"
import type { StructuredOutcome } from "./StructuredFlow.js"
import { makeStructuredFlow } from "./StructuredFlow.js"
import { cosmeticStructured } from "./StructuredSummary.js"
import type { Summary } from "./Summary.js"
import { SummaryCache } from "./SummaryCache.js"
import { taggedMetric } from "../metrics/TaggedMetric.js"
import * as Spans from "../telemetry/Spans.js"

export interface SummaryInput {
  readonly change: { readonly diff: string } | { readonly before: string; readonly after: string }
  readonly document?: DocumentInfo
  readonly model?: string
  readonly temperature?: number
  readonly maxTokens?: number
  /** Whose turn the calls take at the rate limiter (a job's items share one); else one of their own. */
  readonly owner?: string
  readonly priority?: Priority
}

const summaries = taggedMetric(Metric.counter("summaries_total", { description: "Summaries by outcome and fallback reason" }), "outcome", "reason")

export const COSMETIC_SUMMARY =
  "Only formatting changed (whitespace, line breaks or invisible characters); the wording of the document is the same."

const noSpend: NonNullable<Summary["usage"]> = { promptTokens: 0, completionTokens: 0, totalTokens: 0, costUsd: "0" }

/** Tokens add up; the cost only when every call's cost is known (an unknown part makes the sum unknown). */
const sumUsage = (calls: ReadonlyArray<CompletionSuccess>): Summary["usage"] => {
  const costs = calls.map((c) => c.usage.costUsd)
  return {
    promptTokens: calls.reduce((n, c) => n + c.usage.promptTokens, 0),
    completionTokens: calls.reduce((n, c) => n + c.usage.completionTokens, 0),
    totalTokens: calls.reduce((n, c) => n + c.usage.totalTokens, 0),
    costUsd: costs.every(Option.isSome) ? formatOption(Option.some(BigDecimal.sumAll(Arr.getSomes(costs)))) : null
  }
}

/**
 * A policy change in, a plain-language summary out; or the raw diff with the reason the model
 * was not used. Only bad input (an unreadable diff) and a full rate-limiter queue are errors.
 */
export class Summarizer extends Context.Tag("Summarizer")<Summarizer, {
  readonly summarize: (input: SummaryInput) => Effect.Effect<Summary, InvalidDiff | RateLimitQueueFull>
}>() {
  static readonly layer = Layer.effect(Summarizer, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const config = yield* Config
  const llm = yield* LlmClient
  const cache = yield* SummaryCache
  const pricing = yield* Pricing
  const changes = yield* ChangeProcessor
  const { openrouter, summary: settings } = config
  const language = Option.getOrUndefined(settings.language)
  const structuredFlow = makeStructuredFlow()

  /** The input budget for the change text: the configured one, within the model's context. */
  const changeBudget = (model: string, maxTokens: number, document: DocumentInfo | undefined) =>
    Effect.map(pricing.priceOf(model), (price) => {
      const context = Option.flatMap(price, (p) => p.contextLength)
      const budget = Option.match(context, {
        onNone: () => settings.inputBudgetTokens,
        onSome: (n) => Math.min(settings.inputBudgetTokens, n - maxTokens)
      })
      return Math.max(256, budget - overheadTokens({ ...(document ? { document } : {}), ...(language ? { language } : {}), format: settings.format }))
    })

  const summarize = (input: SummaryInput) =>
    Effect.gen(function*() {
      const startedAt = yield* Clock.currentTimeMillis
      const elapsed = Effect.map(Clock.currentTimeMillis, (now) => now - startedAt)
      const model = input.model ?? openrouter.defaultModel
      const temperature = input.temperature ?? openrouter.temperature
      const maxTokens = input.maxTokens ?? openrouter.maxTokens
      const document = input.document
      const budget = yield* changeBudget(model, maxTokens, document)
      // Everything in proportion to the change's size happens off the event loop.
      const { changeText, cosmetic, grounding, rawDiff, textHash } = yield* changes.process(input.change, {
        budgetTokens: budget,
        maxParts: settings.maxParts,
        largeChange: settings.largeChange,
        grounding: settings.format !== "text"
      })
      const base = { rawDiff, cached: false, model: null, provider: null, requestId: null, fallbackDetail: null, structured: null, grounding: null, structuredError: null }
      if (cosmetic) {
        summaries("summarized", "cosmetic").unsafeUpdate(1, [])
        return { ...base, status: "summarized", summary: COSMETIC_SUMMARY, structured: cosmeticStructured(COSMETIC_SUMMARY), fallbackReason: null, usage: null, attempts: 0, latencyMs: yield* elapsed } satisfies Summary
      }

      const key = !cache.enabled ? null : createHash("sha256")
        .update(JSON.stringify([PROMPT_VERSION, settings.format, settings.format === "text" ? null : STRUCTURED_PROMPT_VERSION, model, openrouter.fallbackModels, temperature, maxTokens, language ?? null, settings.largeChange, settings.maxParts, document ?? null, textHash]))
        .digest("hex")

      const cached = key === null ? Option.none() : yield* cache.get(key)
      if (Option.isSome(cached)) {
        summaries("summarized", "cached").unsafeUpdate(1, [])
        // Nothing was spent for this request: the original call's cost stays in the ledger, once.
        // Entries written before `fallbackDetail` existed lack it; only summaries are cached.
        return { ...cached.value, fallbackDetail: null, cached: true, usage: cached.value.usage === null ? null : noSpend, attempts: 0, latencyMs: yield* elapsed } satisfies Summary
      }

      // Calls of one summary run on its fibers in turn or side by side; JavaScript's one thread keeps a plain sum exact.
      let attempts = 0
      // Every call of this summary shares one owner, so a many-part summary takes turns with others.
      const owner = input.owner ?? crypto.randomUUID()
      const call = (messages: ReadonlyArray<ChatMessage>, purpose: string, responseFormat?: ResponseFormat) =>
        Effect.flatMap(
          llm.generateCompletionResult({
            messages, model, temperature, maxTokens, purpose, owner,
            ...(input.priority ? { priority: input.priority } : {}),
            ...(responseFormat ? { responseFormat } : {})
          }),
          (result) => {
            attempts += result.attempts
            return result.status === "success" ? Effect.succeed(result) : Effect.fail(result.error)
          }
        )
      const prompt = { ...(document ? { document } : {}), ...(language ? { language } : {}) }

      const calls: Effect.Effect<ReadonlyArray<CompletionSuccess>, LlmError> = changeText._tag !== "Parts"
        ? Effect.map(call(buildMessages({ ...prompt, changeText: changeText.text }), "summary"), Arr.of)
        : Effect.gen(function*() {
          const parts = changeText.texts
          const partials = yield* Effect.forEach(
            parts,
            (part, i) => call(buildMessages({ ...prompt, changeText: part, part: { index: i + 1, total: parts.length } }), "summary-part"),
            // As many at once as there are lanes: the limiter's turns keep other requests from waiting behind them.
            { concurrency: config.rateLimit.maxConcurrency }
          )
          const combined = yield* call(buildCombineMessages({ ...prompt, partSummaries: partials.map((p) => p.text) }), "summary-combine")
          return [...partials, combined]
        })

      const asked: Effect.Effect<StructuredOutcome, LlmError> = settings.format === "text"
        ? Effect.map(calls, (results) => ({ calls: results, summary: results[results.length - 1]!.text, structured: null, grounding: null, structuredError: null }))
        : structuredFlow.run(call, {
          format: settings.format,
          model,
          maxTokens,
          prompt,
          basis: grounding ?? { added: "", removed: "", sections: [] },
          pieces: changeText._tag === "Parts" ? changeText.texts : [changeText.text]
        })
      const outcome = yield* Effect.either(asked)
      const latencyMs = yield* elapsed
      if (Either.isLeft(outcome)) {
        const error = outcome.left
        if (error._tag === "RateLimitQueueFull") return yield* Effect.fail(error)
        const reason = reasonOf(error)
        const fallbackDetail = detailOf(error)
        summaries("fallback", reason).unsafeUpdate(1, [])
        // Upstream messages were scrubbed of secrets where they entered (OpenRouter / ErrorClassifier).
        yield* Effect.logWarning("Summary fell back to the raw diff").pipe(
          Effect.annotateLogs({ fallbackReason: reason, fallbackDetail, error: error._tag, detail: "message" in error ? error.message : "", attempts })
        )
        return { ...base, status: "fallback", summary: null, fallbackReason: reason, fallbackDetail, usage: null, attempts, latencyMs } satisfies Summary
      }
      const { calls: results, summary: summaryText, ...structured } = outcome.right
      const last = results[results.length - 1]!
      const summary: Summary = {
        ...base,
        ...structured,
        status: "summarized",
        summary: summaryText,
        fallbackReason: null,
        model: last.model,
        provider: last.provider,
        requestId: last.requestId,
        usage: sumUsage(results),
        attempts,
        latencyMs
      }
      summaries("summarized", "none").unsafeUpdate(1, [])
      if (key !== null) yield* cache.put(key, summary)
      return summary
    }).pipe(Spans.summarize)

  return Summarizer.of({ summarize })
})
