import { Clock, Duration, Effect, Schedule } from "effect"
import type { LlmError } from "../domain/LlmError.js"
import { isTransient } from "../domain/LlmError.js"
import { waitMs } from "./ErrorClassifier.js"

export interface RetrySettings {
  readonly maxRetries: number
  readonly retryBaseMs: number
  /** The longest provider-requested wait honoured; a longer one fails now instead of hanging. */
  readonly retryMaxWaitMs: number
}

const requestedWaitMs = (error: LlmError, nowMs: number): number =>
  "rateLimit" in error ? waitMs(error.rateLimit, nowMs) ?? 0 : 0

/**
 * Exponential backoff (base, 2 x base, 4 x base, ...) for at most `maxRetries` retries of
 * transient errors only. A `Retry-After` or `X-RateLimit-Reset` later than the computed delay
 * replaces it, up to `retryMaxWaitMs`; beyond that the error is returned at once.
 */
export const retryPolicy = (settings: RetrySettings) =>
  Schedule.exponential(Duration.millis(settings.retryBaseMs)).pipe(
    Schedule.intersect(Schedule.recurs(settings.maxRetries)),
    Schedule.intersect(Schedule.identity<LlmError>()),
    Schedule.checkEffect((error) =>
      Effect.map(Clock.currentTimeMillis, (now) => isTransient(error) && requestedWaitMs(error, now) <= settings.retryMaxWaitMs)
    ),
    Schedule.modifyDelayEffect(([, error], delay) =>
      Effect.map(Clock.currentTimeMillis, (now) => Duration.max(delay, Duration.millis(requestedWaitMs(error, now))))
    )
  )
