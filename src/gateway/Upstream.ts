import { Clock, Context, Effect, FiberRef, Layer, Option, Redacted } from "effect"
import type { Dispatcher } from "undici"
import { Config } from "../Config.js"
import type { UpstreamError } from "../domain/LlmError.js"
import { UpstreamInvalidResponse, UpstreamNetworkError, UpstreamTimeout } from "../domain/LlmError.js"
import { fromJsonNumber } from "../domain/Money.js"
import type { ProviderUsage } from "../llm/CompletionProvider.js"
import type { ClassifyContext } from "../llm/ErrorClassifier.js"
import { failure, fromStatus, timeoutCodes } from "../llm/ErrorClassifier.js"
import { count } from "../llm/OpenRouter.js"
import { decodeLoose, Generation } from "../llm/OpenRouterWire.js"
import { Scrubber } from "../llm/Scrubber.js"
import { UpstreamWritten } from "../llm/RateLimiter.js"
import { UpstreamPool, type WrittenOptions } from "../llm/UpstreamPool.js"

/** An answer whose status line and headers arrived; its body is read by whoever holds it. */
export interface RawAnswer {
  readonly status: number
  readonly headers: Headers
  readonly body: Dispatcher.ResponseData["body"]
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {}

export const toHeaders = (raw: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>): Headers => {
  const headers = new Headers()
  for (const [key, value] of Object.entries(raw)) {
    if (Array.isArray(value)) value.forEach((v) => headers.append(key, v))
    else if (typeof value === "string") headers.set(key, value)
  }
  return headers
}

/** A transport failure (refused, reset, timed out) as the error family that decides retrying. */
export const transportError = (thrown: unknown, model: string, generationId?: string): UpstreamError => {
  const code = String(record(thrown)["code"] ?? record(record(thrown)["cause"])["code"] ?? "connection_error")
  const message = thrown instanceof Error ? thrown.message : String(thrown)
  return timeoutCodes.has(code)
    ? new UpstreamTimeout(failure({ message: "Upstream did not answer in time", code: "timeout", model, generationId }))
    : new UpstreamNetworkError(failure({ message: `Connection to upstream failed: ${message}`, code, model, generationId }))
}

/** A non-200 answer read whole and classified (its status, `Retry-After`, `X-RateLimit-*`, OpenRouter's error body). */
export const rejection = (answer: RawAnswer, ctx: ClassifyContext): Effect.Effect<UpstreamError> =>
  Effect.promise(() => answer.body.text().catch(() => "")).pipe(
    Effect.map((text) => {
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = { message: `HTTP ${answer.status}` }
      }
      return fromStatus(answer.status, answer.headers, record(parsed)["error"] ?? parsed, ctx)
    })
  )

const decodeGeneration = decodeLoose(Generation)

/** OpenRouter's billed record of a generation (`GET /generation?id=`), as usage with its cost. */
export const parseGeneration = (body: unknown): ProviderUsage | undefined => {
  const data = decodeGeneration(body).data ?? {}
  const cost = fromJsonNumber(data.total_cost)
  if (Option.isNone(cost)) return undefined
  const promptTokens = count(data.tokens_prompt)
  const completionTokens = count(data.tokens_completion)
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedPromptTokens: 0, costUsd: cost }
}

/**
 * The gateway's raw line to OpenRouter: bytes out, bytes back, nothing decoded on the way unless
 * the pipeline needs it. `undici.request` directly, since a pass-through has no use for the SDK's
 * objects and a stream must reach the caller chunk by chunk.
 */
export class GatewayUpstream extends Context.Tag("GatewayUpstream")<GatewayUpstream, {
  /** POST `{base}/chat/completions` with `body`; resolves once the status and headers are in. */
  readonly chat: (body: string, model: string) => Effect.Effect<RawAnswer, UpstreamError>
  /** `GET {base}/generation?id=`: the billed usage of a generation, or `None` while it is not there yet. */
  readonly generation: (id: string) => Effect.Effect<Option.Option<ProviderUsage>, UpstreamError>
  readonly context: (model: string) => Effect.Effect<ClassifyContext>
}>() {
  static readonly layer = Layer.effect(
    GatewayUpstream,
    Effect.gen(function*() {
      const { openrouter, llm } = yield* Config
      const { scrub } = yield* Scrubber
      // The same connections as the summaries' client: one pool per process, closed by its layer.
      const { basePath, pool } = yield* UpstreamPool
      const headers: Record<string, string> = {
        authorization: `Bearer ${Option.match(openrouter.apiKey, { onNone: () => "unset", onSome: Redacted.value })}`,
        ...Option.match(openrouter.appUrl, { onNone: () => ({}), onSome: (url) => ({ "http-referer": url }) }),
        ...Option.match(openrouter.appTitle, { onNone: () => ({}), onSome: (title) => ({ "x-title": title }) })
      }
      const postHeaders = { ...headers, "content-type": "application/json" }
      const context = (model: string): Effect.Effect<ClassifyContext> =>
        Effect.map(Clock.currentTimeMillis, (nowMs) => ({ model, nowMs, maxWaitMs: llm.retryMaxWaitMs, scrub }))

      const chat = (body: string, model: string) =>
        FiberRef.getWith(UpstreamWritten, (onWritten) =>
          Effect.tryPromise({
            try: (signal) => {
              const options: WrittenOptions = { path: `${basePath}/chat/completions`, method: "POST", headers: postHeaders, body, signal, onWritten }
              return pool.request(options)
            },
            catch: (thrown) => transportError(thrown, model)
          })
        ).pipe(
          Effect.map((res): RawAnswer => ({ status: res.statusCode, headers: toHeaders(res.headers), body: res.body }))
        )

      const generation = (id: string) =>
        Effect.tryPromise({
          try: (signal) =>
            pool.request({ path: `${basePath}/generation?id=${encodeURIComponent(id)}`, method: "GET", headers, signal }),
          catch: (thrown) => transportError(thrown, "generation")
        }).pipe(
          Effect.flatMap((res) =>
            Effect.promise(() => res.body.text().catch(() => "")).pipe(Effect.flatMap((text) => {
              if (res.statusCode === 404) return Effect.succeed(Option.none<ProviderUsage>())
              if (res.statusCode !== 200) {
                return Effect.flatMap(context("generation"), (ctx) => Effect.fail(fromStatus(res.statusCode, toHeaders(res.headers), undefined, ctx)))
              }
              try {
                return Effect.succeed(Option.fromNullable(parseGeneration(JSON.parse(text))))
              } catch {
                return Effect.fail(new UpstreamInvalidResponse(failure({ message: "Unreadable generation record", code: "unparseable_body", model: "generation" })))
              }
            }))
          )
        )

      return { chat, generation, context }
    })
  )
}
