import { BigDecimal, Effect, Either, FiberRef, Layer, Option, Redacted } from "effect"
import type { Clock } from "effect"
import { Config } from "../Config.js"
import type { UpstreamError } from "../domain/LlmError.js"
import { fromJsonNumber } from "../domain/Money.js"
import type { ClassifyContext, HeaderSource } from "./ErrorClassifier.js"
import { decodeChatResponse, fromChatResponse, fromErrorResponse, fromTransport, rateLimitInfo, servedBy, unreadable } from "./ErrorClassifier.js"
import type { KeyInfo, ProviderAnswer, ProviderRequest, ProviderUsage } from "./CompletionProvider.js"
import { CompletionProvider } from "./CompletionProvider.js"
import { decodeLoose, KeyAnswer, Usage } from "./OpenRouterWire.js"
import { Scrubber } from "./Scrubber.js"
import { readCapped } from "./CappedRead.js"
import { UpstreamWritten } from "./RateLimiter.js"
import { UpstreamPool, type WrittenOptions } from "./UpstreamPool.js"

/** A token count off the wire: absent or not finite is 0, never negative or fractional. */
export const count = (value: number | undefined): number => (value === undefined || !Number.isFinite(value) ? 0 : Math.max(0, Math.round(value)))

/** OpenRouter's usage block, decoded; `upstream_inference_cost` is only added for BYOK, where `cost` excludes it. */
export const usageOf = (usage: Usage): ProviderUsage => {
  const promptTokens = count(usage.prompt_tokens)
  const completionTokens = count(usage.completion_tokens)
  const cost = fromJsonNumber(usage.cost)
  const byokCost = usage.is_byok === true ? fromJsonNumber(usage.cost_details?.upstream_inference_cost) : Option.none()
  return {
    promptTokens,
    completionTokens,
    totalTokens: usage.total_tokens === undefined ? promptTokens + completionTokens : count(usage.total_tokens),
    cachedPromptTokens: count(usage.prompt_tokens_details?.cached_tokens),
    costUsd: Option.isSome(byokCost) ? Option.map(cost, (c) => BigDecimal.sum(c, byokCost.value)).pipe(Option.orElse(() => byokCost)) : cost
  }
}

const decodeUsage = decodeLoose(Usage)

/** The usage block of any body (a stream chunk, a pass-through answer); none when absent. */
export const parseUsage = (raw: unknown): ProviderUsage | undefined => (raw === undefined || raw === null ? undefined : usageOf(decodeUsage(raw)))

const noUsage: ProviderUsage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedPromptTokens: 0, costUsd: Option.none() }

const decodeKey = decodeLoose(KeyAnswer)
const intervalUnits = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const

const parseKeyInfo = (body: unknown): KeyInfo => {
  const data = decodeKey(body).data ?? {}
  const requests = data.rate_limit?.requests
  const interval = data.rate_limit?.interval === undefined ? null : /^(\d+)\s*(ms|s|m|h)$/.exec(data.rate_limit.interval)
  return {
    label: data.label ?? null,
    limitUsd: fromJsonNumber(data.limit),
    limitRemainingUsd: fromJsonNumber(data.limit_remaining),
    isFreeTier: data.is_free_tier === true,
    rateLimit: requests !== undefined && interval !== null
      ? Option.some({ requests, windowMs: Number(interval[1]) * intervalUnits[interval[2] as keyof typeof intervalUnits] })
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

const requestBody = (request: ProviderRequest) =>
  JSON.stringify({
    model: request.model,
    messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
    temperature: request.temperature,
    max_tokens: request.maxTokens,
    ...(request.fallbackModels.length > 0 ? { models: [request.model, ...request.fallbackModels] } : {}),
    ...responseFormatFields(request)
  })

/**
 * The most bytes read from an answer allowed `maxTokens` tokens: 64 bytes a token (escaped
 * non-Latin text, reasoning, the JSON around it) plus 1 MiB for the envelope and error bodies.
 */
export const derivedResponseCap = (maxTokens: number) => 1_048_576 + 64 * maxTokens

/** A 2xx answer, its body parsed. */
interface JsonAnswer {
  readonly body: unknown
  readonly headers: HeaderSource
}

/** What came back from one completion call, before it is read as an answer or an error. */
type Raw =
  | { readonly _tag: "Response"; readonly status: number; readonly headers: HeaderSource; readonly body: Buffer }
  | { readonly _tag: "Thrown"; readonly thrown: unknown; readonly timedOut: boolean }

/** The most bytes read from `GET /key`: a small JSON object. */
const keyAnswerCap = 65_536

/**
 * The OpenRouter implementation of `CompletionProvider`. A completion is one prebuilt undici `Pool`
 * request, its JSON parsed and decoded once (measured against the `openai` SDK with `bench/client.ts
 * --transports`: about 2.5x less CPU per call); the key check is one more such request, so the
 * service does not load the SDK at all (4-6 MB less resident memory at idle, measured).
 */
export const OpenRouter = Layer.effect(
  CompletionProvider,
  Effect.gen(function*() {
    const { openrouter, llm } = yield* Config
    const { scrub } = yield* Scrubber
    const { pool, basePath } = yield* UpstreamPool
    const capFor = (maxTokens: number) => Option.getOrElse(openrouter.maxResponseBytes, () => derivedResponseCap(maxTokens))
    const apiKey = Option.match(openrouter.apiKey, { onNone: () => "unset", onSome: Redacted.value })
    const attribution = {
      ...Option.match(openrouter.appUrl, { onNone: () => ({}), onSome: (url) => ({ "http-referer": url }) }),
      ...Option.match(openrouter.appTitle, { onNone: () => ({}), onSome: (title) => ({ "x-title": title }) })
    }
    const keyHeaders = { authorization: `Bearer ${apiKey}`, accept: "application/json", ...attribution }
    const headers = { ...keyHeaders, "content-type": "application/json" }
    const completionRequest = (body: string) => ({ path: `${basePath}/chat/completions`, method: "POST" as const, headers, body })
    const keyRequest = { path: `${basePath}/key`, method: "GET" as const, headers: keyHeaders }

    /**
     * The call and the whole read under one deadline (OPENROUTER_TIMEOUT_MS); an interruption aborts
     * it. The limiter learns when the request reaches the wire (`UpstreamWritten`).
     */
    const send = (request: ReturnType<typeof completionRequest> | typeof keyRequest, cap: number) =>
      FiberRef.getWith(UpstreamWritten, (onWritten) => Effect.async<Raw>((resume) => {
        const controller = new AbortController()
        let timedOut = false
        const timer = setTimeout(() => {
          timedOut = true
          controller.abort()
        }, openrouter.timeoutMs)
        const options: WrittenOptions = { ...request, signal: controller.signal, onWritten }
        pool.request(options)
          .then((res) => readCapped(res, cap).then((buffer): Raw => ({ _tag: "Response", status: res.statusCode, headers: res.headers, body: buffer })))
          .catch((thrown): Raw => ({ _tag: "Thrown", thrown, timedOut }))
          .then((raw) => {
            clearTimeout(timer)
            resume(Effect.succeed(raw))
          })
        return Effect.sync(() => {
          clearTimeout(timer)
          controller.abort()
        })
      }))

    const parse = (text: string): Either.Either<unknown, string> => {
      try {
        return Either.right(JSON.parse(text))
      } catch (error) {
        return Either.left(error instanceof Error ? error.message : String(error))
      }
    }

    /** How an answer about `model`, arriving now, is classified. */
    const contextOf = (model: string, clock: Clock.Clock): ClassifyContext => ({ model, nowMs: clock.unsafeCurrentTimeMillis(), maxWaitMs: llm.retryMaxWaitMs, scrub })

    /** A 2xx answer's JSON and headers; a transport failure, an error status or an unreadable body as its upstream error. */
    const jsonOf = (raw: Raw, ctx: ClassifyContext): Either.Either<JsonAnswer, UpstreamError> => {
      if (raw._tag === "Thrown") return Either.left(fromTransport(raw.thrown, raw.timedOut, ctx))
      const json = parse(raw.body.toString("utf8"))
      if (raw.status < 200 || raw.status >= 300) return Either.left(fromErrorResponse(raw.status, raw.headers, Either.getOrUndefined(json), ctx))
      return Either.match(json, { onLeft: (reason) => Either.left(unreadable(reason, ctx)), onRight: (body) => Either.right({ body, headers: raw.headers }) })
    }

    const answerOf = ({ body, headers }: JsonAnswer, ctx: ClassifyContext): Either.Either<ProviderAnswer, UpstreamError> => {
      const data = decodeChatResponse(body)
      // Some OpenAI-compatible servers send no usage: tokens are then unknown and counted as 0.
      const usage = data.usage === undefined ? noUsage : usageOf(data.usage)
      return Either.map(
        fromChatResponse(data, headers, { ...usage, costSource: Option.isSome(usage.costUsd) ? "provider" : "unknown" }, ctx),
        (answer): ProviderAnswer => ({
          ...answer,
          ...servedBy(data, headers, ctx),
          usage,
          rateLimit: rateLimitInfo(headers, undefined, ctx.nowMs)
        })
      )
    }

    const complete = (request: ProviderRequest): Effect.Effect<ProviderAnswer, UpstreamError> =>
      Effect.clockWith((clock) =>
        Effect.flatMap(send(completionRequest(requestBody(request)), capFor(request.maxTokens)), (raw) => {
          const ctx = contextOf(request.model, clock)
          return Either.flatMap(jsonOf(raw, ctx), (answer) => answerOf(answer, ctx))
        })
      )

    /** Classified as a completion's answer is: the key check's failures are upstream errors of the same kinds. */
    const keyInfo = Effect.clockWith((clock) =>
      Effect.flatMap(send(keyRequest, keyAnswerCap), (raw) =>
        Either.map(jsonOf(raw, contextOf("key", clock)), ({ body }) => parseKeyInfo(body)))
    )

    return CompletionProvider.of({ complete, keyInfo })
  })
)
