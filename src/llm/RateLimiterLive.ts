import { Deferred, Effect, FiberId, Metric, Queue } from "effect"
import type { Clock, Context, Scope } from "effect"
import { RateLimitQueueFull } from "../domain/LlmError.js"
import type { RateLimiter, RateLimiterStats } from "./RateLimiter.js"
import * as Metrics from "./RateLimiterMetrics.js"
import type { RedisUnavailable, RedisWindow } from "./RedisWindow.js"
import { StartLog, type WindowRule } from "./SlidingWindow.js"

export interface RateLimiterOptions {
  readonly requests: number
  readonly windowMs: number
  readonly maxConcurrency: number
  readonly queueMax: number
  /** Replicas assumed while Redis is unreachable: each then allows its share of the limit. */
  readonly fallbackReplicas: number
  /** The shared window; without it the window is counted in this process only. */
  readonly redis?: RedisWindow
}

interface Waiter {
  readonly granted: Deferred.Deferred<void>
  readonly arrivedAt: number
  readonly lane: Lane
  state: "waiting" | "granted" | "cancelled"
  /** Its start in the shared window, once Redis admitted it. */
  member?: string
}

/** One owner's waiters (a request, later a caller), first in first out. */
interface Lane {
  readonly owner: string
  readonly waiters: Array<Waiter>
  head: number
}

type Ticket = "started" | Waiter | RateLimitQueueFull

/**
 * Each window is kept a little longer than configured (0.5 %, at most 5 ms): a call begins a
 * fraction of a millisecond after its start is recorded, by a varying amount, and without the
 * margin two starts a window apart could land a hair less than a window apart upstream.
 */
export const guardMs = (windowMs: number) => Math.min(5, windowMs * 0.005)
const guarded = (rule: WindowRule): WindowRule => ({ requests: rule.requests, windowMs: rule.windowMs + guardMs(rule.windowMs) })

/** How long a call is taken to last for the queue-full estimate until one has finished. */
const assumedCallMs = 1_000

/** While Redis is unreachable, how often a reconnected client is tried again. */
const redisRetryMs = 1_000

/** Sub-millisecond time on the service's clock: whole milliseconds would let two starts a window minus 0.9 ms apart. */
const preciseMs = (clock: Clock.Clock) => Number(clock.unsafeCurrentTimeNanos()) / 1_000_000
const currentMs = Effect.clockWith((clock) => Effect.sync(() => preciseMs(clock)))

/**
 * The permits. In-process, callers start without a hop when they may, and every release starts
 * the waiters it unblocks; one dispatcher fiber handles what only time unblocks (the window, a
 * pause) and, with Redis, asks the shared window for each start. Waiters are served round-robin
 * between owners (one request's many parts cannot hold the limit while another request waits),
 * and first in, first out within one owner; callers that name no owner are each their own.
 * A start is recorded when the call really begins, not when its turn is granted.
 */
export const makeRateLimiter = (
  options: RateLimiterOptions
): Effect.Effect<Context.Tag.Service<RateLimiter>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { fallbackReplicas, maxConcurrency, queueMax, redis } = options
    const configured: WindowRule = { requests: options.requests, windowMs: options.windowMs }
    // The rules as enforced: configured, maybe the provider's, each with its guard margin.
    let rules: ReadonlyArray<WindowRule> = [guarded(configured)]
    const share = (rule: WindowRule): WindowRule => ({
      requests: Math.max(1, Math.floor(rule.requests / fallbackReplicas)),
      windowMs: rule.windowMs
    })
    const log = new StartLog(configured.requests)
    // Lanes with waiters, in turn order; `turn` is the index of the lane served next (past the end: wrap).
    const lanes = new Map<string, Lane>()
    const ring: Array<Lane> = []
    let turn = 0
    let anonymous = 0
    let waiting = 0
    let inFlight = 0
    // Granted but not yet begun: counted in flight, and in the window as starting now.
    let pending = 0
    let pausedUntil = 0
    let averageCallMs = 0
    let lastRedisTry = Number.NEGATIVE_INFINITY
    let mode: RateLimiterStats["mode"] = redis === undefined ? "local" : "redis"
    const wake = yield* Queue.sliding<void>(1)
    const scope = yield* Effect.scope

    const localRules = () => (mode === "local-fallback" ? rules.map(share) : rules)

    const turnIndex = () => (turn < ring.length ? turn : 0)

    /** The waiter served next: the first live one of the lane whose turn it is (emptied lanes leave the ring). */
    const liveHead = (): Waiter | undefined => {
      while (ring.length > 0) {
        const at = turnIndex()
        const lane = ring[at]!
        while (lane.head < lane.waiters.length && lane.waiters[lane.head]!.state !== "waiting") lane.head++
        if (lane.head < lane.waiters.length) {
          if (lane.head > 1024 && lane.head * 2 > lane.waiters.length) {
            lane.waiters.splice(0, lane.head)
            lane.head = 0
          }
          return lane.waiters[lane.head]
        }
        ring.splice(at, 1)
        lanes.delete(lane.owner)
        if (at < turn) turn--
      }
      turn = 0
      return undefined
    }

    /** Grants the waiter `liveHead` returned; the next turn goes to the next lane. */
    const grant = (waiter: Waiter) => {
      waiter.lane.head++
      turn = turnIndex() + 1
      waiting--
      inFlight++
      pending++
      waiter.state = "granted"
      Deferred.unsafeDone(waiter.granted, Effect.void)
    }

    /** In-process: start every head waiter that may start now, then tell the dispatcher if only time holds the rest. */
    const pump = (now: number) => {
      if (redis === undefined) {
        for (let next = liveHead(); next !== undefined; next = liveHead()) {
          if (inFlight >= maxConcurrency || now < pausedUntil || log.waitMs(now, rules, pending) > 0) break
          grant(next)
        }
      }
      Metrics.queueDepth.unsafeUpdate(waiting, [])
      // A full set of lanes is unblocked by the next release, not by the dispatcher.
      if (liveHead() !== undefined && (redis !== undefined || inFlight < maxConcurrency)) wake.unsafeOffer(undefined)
    }

    /** An honest guess at when the caller refused now would have started. */
    const retryEstimate = (now: number): number => {
      const position = pending + waiting + 1
      const window = mode === "redis"
        ? Math.max(...rules.map((r) => Math.ceil(position / r.requests) * r.windowMs))
        : log.estimateMs(now, position, localRules())
      const afterPause = Math.max(0, pausedUntil - now) +
        Math.max(...localRules().map((r) => Math.floor((position - 1) / r.requests) * r.windowMs))
      // Before any call has finished its length is unknown: assumed, rather than taken as zero
      // (which answered a full queue's first refusals with "retry in 1 s" whatever its length).
      const callMs = averageCallMs > 0 ? averageCallMs : assumedCallMs
      const lanes = Math.ceil((waiting + 1 + inFlight) / maxConcurrency) * callMs
      return Math.max(1, Math.ceil(Math.max(window, afterPause, lanes)))
    }

    const laneOf = (owner: string): Lane => {
      const existing = lanes.get(owner)
      if (existing !== undefined) return existing
      const lane: Lane = { owner, waiters: [], head: 0 }
      lanes.set(owner, lane)
      // At the end of the ring: after every owner already waiting has had its turn in this round.
      ring.push(lane)
      return lane
    }

    const enter = (owner: string | undefined) => Effect.clockWith((clock) =>
      Effect.sync((): Ticket => {
        const now = preciseMs(clock)
        const free = inFlight < maxConcurrency && now >= pausedUntil
        // Not ahead of earlier callers granted a moment ago that have not begun yet, either.
        if (redis === undefined && waiting === 0 && pending === 0 && free && log.waitMs(now, rules) === 0) {
          log.record(now)
          inFlight++
          Metrics.waitSeconds.unsafeUpdate(0, [])
          return "started"
        }
        // With Redis even a caller that may start at once passes through the dispatcher's queue.
        if (waiting >= queueMax && !(redis !== undefined && waiting === 0 && free)) {
          Metrics.rejected.unsafeUpdate(1, [])
          return new RateLimitQueueFull({ retryAfterMs: retryEstimate(now), queueDepth: waiting })
        }
        const lane = laneOf(owner ?? `anonymous:${anonymous++}`)
        const waiter: Waiter = { granted: Deferred.unsafeMake(FiberId.none), arrivedAt: now, lane, state: "waiting" }
        lane.waiters.push(waiter)
        waiting++
        pump(now)
        return waiter
      })
    )

    /** The granted waiter begins: its start enters the window now (in Redis too, without waiting for it). */
    const begin = (waiter: Waiter) =>
      Effect.clockWith((clock) => {
        const now = preciseMs(clock)
        pending--
        log.record(now)
        Metrics.waitSeconds.unsafeUpdate((now - waiter.arrivedAt) / 1000, [])
        const member = waiter.member
        return redis === undefined || member === undefined
          ? Effect.succeed(now)
          : Effect.as(Effect.forkIn(Effect.ignore(redis.began(member)), scope), now)
      })

    const release = (startedAt: number) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = preciseMs(clock)
          inFlight--
          averageCallMs = averageCallMs === 0 ? now - startedAt : averageCallMs * 0.9 + (now - startedAt) * 0.1
          if (waiting > 0) pump(now)
        })
      )

    const cancel = (waiter: Waiter) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          if (waiter.state === "granted") {
            // Interrupted as its turn came: nothing started, so its lane and its slot are freed.
            pending--
            inFlight--
          } else {
            waiter.state = "cancelled"
            waiting--
          }
          pump(preciseMs(clock))
        })
      )

    const withPermit = <A, E, R>(effect: Effect.Effect<A, E, R>, owner?: string): Effect.Effect<A, E | RateLimitQueueFull, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(enter(owner), (ticket): Effect.Effect<A, E | RateLimitQueueFull, R> => {
          if (ticket === "started") {
            return Effect.flatMap(currentMs, (startedAt) => Effect.ensuring(restore(effect), release(startedAt)))
          }
          if (ticket instanceof RateLimitQueueFull) return Effect.fail(ticket)
          return restore(Deferred.await(ticket.granted)).pipe(
            Effect.onInterrupt(() => cancel(ticket)),
            Effect.zipRight(begin(ticket)),
            Effect.flatMap((startedAt) => Effect.ensuring(restore(effect), release(startedAt)))
          )
        })
      )

    const switchMode = (next: RateLimiterStats["mode"], reason: string) =>
      Effect.suspend(() => {
        if (mode === next) return Effect.void
        mode = next
        const line = next === "redis"
          ? Effect.logInfo("Rate limit: Redis reachable again, counting the shared window there")
          : Effect.logWarning("Rate limit: Redis unreachable, falling back to this replica's share of the limit").pipe(
            Effect.annotateLogs({ reason, localRequests: share(configured).requests, windowMs: configured.windowMs })
          )
        return Effect.zipRight(line, Metric.set(Metrics.fallback, next === "local-fallback" ? 1 : 0))
      })

    /** 0 when the head may start now (with Redis: its start is counted there, under `member`), else how long to wait. */
    const admit = (now: number): Effect.Effect<{ readonly waitMs: number; readonly member?: string }> => {
      const local = Effect.sync(() => ({ waitMs: log.waitMs(now, localRules(), pending) }))
      if (redis === undefined) return local
      if (mode === "local-fallback" && !(redis.connected() && now - lastRedisTry >= redisRetryMs)) return local
      // This replica's own starts, recorded as they really began, never exceed the limit either;
      // checking them first also saves a round trip while the window is full anyway.
      const own = log.waitMs(now, rules, pending)
      if (own > 0) return Effect.succeed({ waitMs: own })
      lastRedisTry = now
      return redis.acquire(rules).pipe(
        Effect.tap(() => switchMode("redis", "answered")),
        Effect.catchAll((e) => Effect.zipRight(switchMode("local-fallback", e.message), local))
      )
    }

    const sleepOrWake = (ms: number) => Effect.raceFirst(Effect.sleep(Math.max(1, Math.ceil(ms))), Queue.take(wake))

    const step: Effect.Effect<void> = Effect.gen(function*() {
      if (liveHead() === undefined || inFlight >= maxConcurrency) return yield* Queue.take(wake)
      const now = yield* currentMs
      if (now < pausedUntil) return yield* sleepOrWake(pausedUntil - now)
      const { member, waitMs } = yield* admit(now)
      if (waitMs > 0) return yield* sleepOrWake(waitMs)
      if (redis === undefined) return pump(now)
      const next = liveHead()
      // With Redis the slot is already counted; with nobody left to use it, it stays spent.
      if (next !== undefined) {
        if (member !== undefined) next.member = member
        grant(next)
      }
      Metrics.queueDepth.unsafeUpdate(waiting, [])
    })

    if (redis !== undefined && !redis.connected()) yield* switchMode("local-fallback", "not reachable at start")
    yield* Effect.forkScoped(Effect.forever(step))

    // Other replicas learn of a pause from the shared window; without Redis it stays local all the same.
    const share429 = (effect: Effect.Effect<void, RedisUnavailable>) =>
      Effect.catchAll(effect, (e) => Effect.logDebug("Rate limit: could not share the pause through Redis", e.message))

    const pause = (untilMs: number, cause: string) =>
      Effect.flatMap(currentMs, (now) => {
        if (untilMs <= now || untilMs <= pausedUntil) return Effect.void
        const extending = pausedUntil > now
        pausedUntil = untilMs
        wake.unsafeOffer(undefined)
        const shared = redis === undefined ? Effect.void : share429(redis.pause(untilMs))
        const fields = { cause, untilMs, pauseMs: Math.round(untilMs - now), queueDepth: waiting, inFlight }
        // One line per pause: later 429s of the same episode only move its end.
        return Effect.zipRight(
          shared,
          extending
            ? Effect.logDebug("Rate limit: upstream pause extended").pipe(Effect.annotateLogs(fields))
            : Effect.logWarning("Rate limit: pausing every upstream call").pipe(
              Effect.annotateLogs(fields),
              Effect.zipRight(Metric.increment(Metric.tagged(Metrics.pauses, "cause", cause)))
            )
        )
      })

    const resume = Effect.flatMap(currentMs, (now) => {
      if (pausedUntil <= now) return Effect.void
      pausedUntil = 0
      pump(now)
      return Effect.zipRight(
        redis === undefined ? Effect.void : share429(redis.resume),
        Effect.logDebug("Rate limit: upstream pause ended early by a success")
      )
    })

    const adoptProviderLimit = (requests: number, windowMs: number) =>
      Effect.flatMap(currentMs, (now) => {
        const valid = Number.isSafeInteger(requests) && requests >= 1 && Number.isSafeInteger(windowMs) && windowMs >= 1
        // A rule allowing as many or more in a span no longer than the configured one is already implied.
        const implied = !valid || (requests >= configured.requests && windowMs <= configured.windowMs)
        rules = (implied ? [configured] : [configured, { requests, windowMs }]).map(guarded)
        if (!implied) log.ensureCapacity(requests)
        pump(now)
        return implied ? Effect.void : Effect.logInfo("Rate limit: adopting the provider's reported limit").pipe(
          Effect.annotateLogs({ requests, windowMs, configuredRequests: configured.requests, configuredWindowMs: configured.windowMs })
        )
      })

    const stats = Effect.map(currentMs, (now): RateLimiterStats => ({
      queueDepth: waiting,
      inFlight,
      pausedUntilMs: pausedUntil > now ? pausedUntil : null,
      mode
    }))

    return { withPermit, pause, resume, adoptProviderLimit, stats }
  })
