import { Context, Effect, Layer, Option } from "effect"
import { Config } from "../Config.js"
import type { Priority } from "../domain/Completion.js"
import type { RateLimitQueueFull } from "../domain/LlmError.js"
import { makeRateLimiter } from "./RateLimiterLive.js"
import { makeRedisWindow } from "./RedisWindow.js"

export interface RateLimiterStats {
  readonly queueDepth: number
  readonly inFlight: number
  /** Unix ms until which every upstream call is held after a provider 429, if any. */
  readonly pausedUntilMs: number | null
  readonly mode: "local" | "redis" | "local-fallback"
}

/** Where replicas sharing one Redis keep their window; tests pass their own to stay apart. */
export const defaultKeyPrefix = "policy-summarizer:ratelimit"

const fromConfig = (keyPrefix: string) =>
  Effect.gen(function*() {
    const { rateLimit } = yield* Config
    const redis = Option.isSome(rateLimit.redisUrl)
      ? yield* makeRedisWindow({ url: rateLimit.redisUrl.value, keyPrefix, commandTimeoutMs: 250 })
      : undefined
    return yield* makeRateLimiter({
      requests: rateLimit.requests,
      windowMs: rateLimit.windowMs,
      maxConcurrency: rateLimit.maxConcurrency,
      queueMax: rateLimit.queueMax,
      fallbackReplicas: rateLimit.fallbackReplicas,
      ...(redis === undefined ? {} : { redis })
    })
  })

/**
 * How fast and how many calls go upstream. Every upstream attempt runs inside `withPermit`:
 * no span of the window ever sees more starts than the limit, at most `maxConcurrency` run at once,
 * and waiters are served from a bounded queue, round-robin between owners and first-in first-out
 * within one owner.
 */
export class RateLimiter extends Context.Tag("RateLimiter")<RateLimiter, {
  /**
   * `owner` groups the permits of one request (later: one caller) so that the queue serves owners
   * in turn; without it the call is an owner of its own. A `background` waiter is served only when
   * no interactive one waits.
   */
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>, owner?: string, priority?: Priority) => Effect.Effect<A, E | RateLimitQueueFull, R>
  /** A provider 429 with nothing remaining: hold every upstream call until `untilMs` (one pause, not one per caller). */
  readonly pause: (untilMs: number, cause: string) => Effect.Effect<void>
  /** A success from upstream ends a provider pause early. */
  readonly resume: Effect.Effect<void>
  /**
   * The limit the provider reports (`GET {base}/key`): from now on it holds as well as the
   * configured one, so the stricter of the two binds. Calling it again replaces the previous one.
   */
  readonly adoptProviderLimit: (requests: number, windowMs: number) => Effect.Effect<void>
  readonly stats: Effect.Effect<RateLimiterStats>
}>() {
  /** In-process, or shared through Redis when `REDIS_URL` is set. */
  static readonly layer: Layer.Layer<RateLimiter, never, Config> = Layer.scoped(this, fromConfig(defaultKeyPrefix))

  /** The same, keeping the shared window under another Redis key prefix. */
  static readonly layerWithKeyPrefix = (keyPrefix: string): Layer.Layer<RateLimiter, never, Config> =>
    Layer.scoped(RateLimiter, fromConfig(keyPrefix))
}
