import { Effect, Metric } from "effect"
import type { LocalWindow } from "./LocalWindow.js"
import * as Metrics from "./RateLimiterMetrics.js"
import type { RedisUnavailable, RedisWindow } from "./RedisWindow.js"
import type { WindowRule } from "./SlidingWindow.js"
import type { Admission, WindowMode, WindowStore } from "./WindowStore.js"

/** While Redis is unreachable, how often a reconnected client is tried again. */
const redisRetryMs = 1_000

export interface FallbackOptions {
  /** Replicas assumed while Redis is unreachable: each then allows its share of the limit. */
  readonly replicas: number
  /** The configured limit, named in the log line of a fallback. */
  readonly configured: WindowRule
}

/**
 * The shared window while Redis answers; this replica's share of the limit (in `local`, which
 * `shared` keeps up to date) while it does not, tried again once reconnected. A pause that cannot
 * be shared still holds this replica (the dispatcher keeps it); the failure is only logged.
 */
export const withLocalFallback = (shared: RedisWindow, local: LocalWindow, options: FallbackOptions): Effect.Effect<WindowStore> =>
  Effect.gen(function*() {
    const share = (rule: WindowRule): WindowRule => ({
      requests: Math.max(1, Math.floor(rule.requests / options.replicas)),
      windowMs: rule.windowMs
    })
    let mode: WindowMode = "redis"
    let lastTry = Number.NEGATIVE_INFINITY

    const switchMode = (next: WindowMode, reason: string) =>
      Effect.suspend(() => {
        if (mode === next) return Effect.void
        mode = next
        const line = next === "redis"
          ? Effect.logInfo("Rate limit: Redis reachable again, counting the shared window there")
          : Effect.logWarning("Rate limit: Redis unreachable, falling back to this replica's share of the limit").pipe(
            Effect.annotateLogs({ reason, localRequests: share(options.configured).requests, windowMs: options.configured.windowMs })
          )
        return Effect.zipRight(line, Metric.set(Metrics.fallback, next === "local-fallback" ? 1 : 0))
      })

    const onLocal = (now: number, rules: ReadonlyArray<WindowRule>, pending: number) => local.acquire(now, rules.map(share), pending)

    const acquire = (now: number, rules: ReadonlyArray<WindowRule>, pending: number): Effect.Effect<Admission> =>
      Effect.suspend(() => {
        if (mode === "local-fallback" && !(shared.connected() && now - lastTry >= redisRetryMs)) return onLocal(now, rules, pending)
        return shared.acquire(now, rules, pending).pipe(
          // Without a member the answer came from this replica's own starts: Redis was not asked.
          Effect.tap((admission) => admission.member === undefined ? Effect.void : switchMode("redis", "answered")),
          Effect.catchAll((e) => {
            lastTry = now
            return Effect.zipRight(switchMode("local-fallback", e.message), onLocal(now, rules, pending))
          })
        )
      })

    const logged = (effect: Effect.Effect<void, RedisUnavailable>) =>
      Effect.catchAll(effect, (e) => Effect.logDebug("Rate limit: could not share the pause through Redis", e.message))

    if (!shared.connected()) yield* switchMode("local-fallback", "not reachable at start")

    return {
      inProcess: false,
      mode: () => mode,
      acquire,
      began: (now, admission) => admission.member === undefined ? local.began(now) : shared.began(now, admission),
      moved: (from, to, admission) => admission.member === undefined ? local.moved(from, to) : shared.moved(from, to, admission),
      pause: (untilMs) => logged(shared.pause(untilMs)),
      resume: logged(shared.resume),
      estimateMs: (now, position, rules, pausedUntil) =>
        mode === "local-fallback"
          ? local.estimateMs(now, position, rules.map(share), pausedUntil)
          : shared.estimateMs(now, position, rules, pausedUntil)
    }
  })
