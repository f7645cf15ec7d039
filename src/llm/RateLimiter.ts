import type { Effect } from "effect"
import { Context } from "effect"
import type { RateLimitQueueFull } from "../domain/LlmError.js"

export interface RateLimiterStats {
  readonly queueDepth: number
  readonly inFlight: number
  /** Unix ms until which every upstream call is held after a provider 429, if any. */
  readonly pausedUntilMs: number | null
  readonly mode: "local" | "redis" | "local-fallback"
}

/**
 * How fast and how many calls go upstream. Every upstream attempt runs inside `withPermit`:
 * no span of the window ever sees more starts than the limit, at most `maxConcurrency` run at once,
 * and waiters are served first-in first-out from a bounded queue.
 */
export class RateLimiter extends Context.Tag("RateLimiter")<RateLimiter, {
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RateLimitQueueFull, R>
  /** A provider 429 with nothing remaining: hold every upstream call until `untilMs` (one pause, not one per caller). */
  readonly pause: (untilMs: number, cause: string) => Effect.Effect<void>
  /** A success from upstream ends a provider pause early. */
  readonly resume: Effect.Effect<void>
  readonly stats: Effect.Effect<RateLimiterStats>
}>() {}
