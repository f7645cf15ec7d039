import { BigDecimal, Clock, Effect, Either, Layer, Option, Redacted } from "effect"
import OpenAI from "openai"
import { Config } from "../Config.js"
import type { UpstreamError } from "../domain/LlmError.js"
import { fromJsonNumber } from "../domain/Money.js"
import type { ClassifyContext } from "./ErrorClassifier.js"
import { fromBody, fromThrown, rateLimitInfo } from "./ErrorClassifier.js"
import type { KeyInfo, ProviderRequest, ProviderUsage } from "./CompletionProvider.js"
import { CompletionProvider } from "./CompletionProvider.js"
import { Scrubber } from "./Scrubber.js"
import { makeUndiciFetch, responseCap } from "./UndiciFetch.js"

const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {}

const int = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? Math.max(0, Math.round(value)) : 0)

/** OpenRouter's usage block; `upstream_inference_cost` is only added for BYOK, where `cost` excludes it. */
export const parseUsage = (raw: unknown): ProviderUsage | undefined => {
  if (raw === undefined || raw === null) return undefined
  const usage = record(raw)
  const promptTokens = int(usage["prompt_tokens"])
  const completionTokens = int(usage["completion_tokens"])
  const cost = fromJsonNumber(usage["cost"])
  const byokCost = usage["is_byok"] === true ? fromJsonNumber(record(usage["cost_details"])["upstream_inference_cost"]) : Option.none()
  return {
    promptTokens,
    completionTokens,
    totalTokens: usage["total_tokens"] === undefined ? promptTokens + completionTokens : int(usage["total_tokens"]),
    cachedPromptTokens: int(record(usage["prompt_tokens_details"])["cached_tokens"]),
    costUsd: Option.isSome(byokCost) ? Option.map(cost, (c) => BigDecimal.sum(c, byokCost.value)).pipe(Option.orElse(() => byokCost)) : cost
  }
}

const noUsage: ProviderUsage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedPromptTokens: 0, costUsd: Option.none() }

const parseKeyInfo = (body: unknown): KeyInfo => {
  const data = record(record(body)["data"])
  const rate = record(data["rate_limit"])
  const requests = typeof rate["requests"] === "number" ? rate["requests"] : undefined
  const interval = typeof rate["interval"] === "string" ? /^(\d+)\s*(ms|s|m|h)$/.exec(rate["interval"]) : null
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const
  return {
    label: typeof data["label"] === "string" ? data["label"] : null,
    limitUsd: fromJsonNumber(data["limit"]),
    limitRemainingUsd: fromJsonNumber(data["limit_remaining"]),
    isFreeTier: data["is_free_tier"] === true,
    rateLimit: requests !== undefined && interval !== null
      ? Option.some({ requests, windowMs: Number(interval[1]) * unit[interval[2] as keyof typeof unit] })
      : Option.none()
  }
}

/**
 * OpenRouter's structured outputs. With a schema, `require_parameters` routes only to endpoints
 * that honour it (other OpenAI-compatible servers ignore the field); `json_object` is a hint any
 * endpoint may serve, since the schema is in the prompt and the answer is checked anyway.
 */
const responseFormatFields = ({ responseFormat }: ProviderRequest) =>
  responseFormat === undefined
    ? {}
    : responseFormat.type === "json_schema"
    ? {
      response_format: { type: "json_schema" as const, json_schema: { name: responseFormat.name, strict: true, schema: { ...responseFormat.schema } } },
      provider: { require_parameters: true }
    }
    : { response_format: { type: "json_object" as const } }

/**
 * The most bytes read from an answer allowed `maxTokens` tokens: 64 bytes a token (escaped
 * non-Latin text, reasoning, the JSON around it) plus 1 MiB for the envelope and error bodies.
 */
export const derivedResponseCap = (maxTokens: number) => 1_048_576 + 64 * maxTokens

/** The OpenRouter implementation of `CompletionProvider`, through the `openai` SDK. */
export const OpenRouter = Layer.effect(
  CompletionProvider,
  Effect.gen(function*() {
    const config = yield* Config
    const { scrub } = yield* Scrubber
    const { openrouter, llm, rateLimit } = config
    const capFor = (maxTokens: number) => Option.getOrElse(openrouter.maxResponseBytes, () => derivedResponseCap(maxTokens))
    const client = new OpenAI({
      apiKey: Option.match(openrouter.apiKey, { onNone: () => "unset", onSome: Redacted.value }),
      baseURL: openrouter.baseUrl,
      // The Effect schedule in LlmClient is the only retry policy.
      maxRetries: 0,
      timeout: openrouter.timeoutMs,
      fetch: makeUndiciFetch({ connections: Math.max(rateLimit.maxConcurrency, 8), maxResponseBytes: capFor(openrouter.maxTokens) }),
      defaultHeaders: {
        ...Option.match(openrouter.appUrl, { onNone: () => ({}), onSome: (url) => ({ "HTTP-Referer": url }) }),
        ...Option.match(openrouter.appTitle, { onNone: () => ({}), onSome: (title) => ({ "X-Title": title }) })
      }
    })
    const context = (model: string): Effect.Effect<ClassifyContext> =>
      Effect.map(Clock.currentTimeMillis, (nowMs) => ({ model, nowMs, maxWaitMs: llm.retryMaxWaitMs, scrub }))

    const complete = (request: ProviderRequest) =>
      Effect.gen(function*() {
        const body = {
          model: request.model,
          messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
          temperature: request.temperature,
          max_tokens: request.maxTokens,
          ...(request.fallbackModels.length > 0 ? { models: [request.model, ...request.fallbackModels] } : {}),
          ...responseFormatFields(request)
        }
        const response = yield* Effect.tryPromise({
          try: (signal) => client.chat.completions.create(body, { signal, fetchOptions: responseCap(capFor(request.maxTokens)) }).withResponse(),
          catch: (thrown) => thrown
        }).pipe(Effect.catchAll((thrown) => Effect.flatMap(context(request.model), (ctx) => Effect.fail(fromThrown(thrown, ctx)))))
        const ctx = yield* context(request.model)
        const data = record(response.data)
        // Some OpenAI-compatible servers send no usage: tokens are then unknown and counted as 0.
        const usage = parseUsage(data["usage"]) ?? noUsage
        const answer = yield* Either.mapLeft(
          fromBody(data, response.response.headers, { ...usage, costSource: Option.isSome(usage.costUsd) ? "provider" : "unknown" }, ctx),
          (e): UpstreamError => e
        )
        return {
          ...answer,
          model: typeof data["model"] === "string" ? scrub(data["model"]) : request.model,
          provider: typeof data["provider"] === "string" ? scrub(data["provider"]) : null,
          requestId: typeof data["id"] === "string" ? scrub(data["id"]) : response.response.headers.get("x-generation-id"),
          usage,
          rateLimit: rateLimitInfo(response.response.headers, undefined, ctx.nowMs)
        }
      })

    const keyInfo = Effect.tryPromise({
      try: (signal) => client.get<unknown>("/key", { signal }),
      catch: (thrown) => thrown
    }).pipe(
      Effect.map(parseKeyInfo),
      Effect.catchAll((thrown) => Effect.flatMap(context("key"), (ctx) => Effect.fail(fromThrown(thrown, ctx))))
    )

    return CompletionProvider.of({ complete, keyInfo })
  })
).pipe(Layer.provide(Scrubber.layer))
