import { Context, Deferred, Effect, FiberRef, Layer, Metric, Option, Queue } from "effect"
import type { Clock, Scope } from "effect"
import { type AppConfig, Config } from "../Config.js"
import type { Priority } from "../domain/Completion.js"
import { RateLimitQueueFull } from "../domain/LlmError.js"
import { LocalWindow } from "./LocalWindow.js"
import * as Metrics from "./RateLimiterMetrics.js"
import { makeRedisWindow } from "./RedisWindow.js"
import type { WindowRule } from "./SlidingWindow.js"
import { type Waiter, WaiterQueue } from "./WaiterQueue.js"
import { withLocalFallback } from "./WindowFallback.js"
import type { Admission, WindowMode, WindowStore } from "./WindowStore.js"

export interface RateLimiterStats {
  readonly queueDepth: number
  readonly inFlight: number
  /** Unix ms until which every upstream call is held after a provider 429, if any. */
  readonly pausedUntilMs: number | null
  readonly mode: WindowMode
}

export interface RateLimiterService {
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
}

export interface RateLimiterOptions {
  readonly requests: number
  readonly windowMs: number
  /** `LLM_RATE_LIMIT_MARGIN_MS`: see `guardMs`. */
  readonly marginMs: number
  readonly maxConcurrency: number
  readonly queueMax: number
}

/**
 * Each window is kept longer than configured by the margin (at most 2 % of it): upstream counts
 * calls as they arrive, and a call arrives some milliseconds after it begins, by a varying amount.
 * Without the margin, a call that arrived late and one that arrived early, a window apart as they
 * began, land less than a window apart upstream (measured with `bench/jobs.ts` on a busy 2-core
 * machine: mostly up to 15 ms, now and then 30-40 ms; over a network, more).
 */
export const guardMs = (windowMs: number, marginMs: number) => Math.min(marginMs, windowMs * 0.02)

/**
 * Inside a permit, what the transport calls as the request is written to a connected socket. A
 * start is counted as the permit begins; a request that then waits for a connection (a new TCP
 * and TLS handshake, a busy pool) reaches upstream that much later, and the next window's calls,
 * begun on time over warm connections, would land less than a window after it. Called later than
 * a millisecond after the start, it moves the start to now.
 */
export const UpstreamWritten = FiberRef.unsafeMake<() => void>(() => undefined)

/** How long a call is taken to last for the queue-full estimate until one has finished. */
const assumedCallMs = 1_000

/** Sub-millisecond time on the service's clock: whole milliseconds would let two starts a window minus 0.9 ms apart. */
const preciseMs = (clock: Clock.Clock) => Number(clock.unsafeCurrentTimeNanos()) / 1_000_000
const currentMs = Effect.clockWith((clock) => Effect.sync(() => preciseMs(clock)))

const unshared: Admission = { waitMs: 0 }

/** A number: started at once, at that time. */
type Ticket = number | Waiter | RateLimitQueueFull

/**
 * Everything the dispatcher knows, in one object. It is changed only inside synchronous blocks
 * (`Effect.sync`, or between two yields of the dispatcher fiber) that never yield: on JavaScript's
 * one thread each block is atomic, as a `Ref.modify` would be, without an allocation per call on the
 * fast path, and a waiter's `Deferred` is completed in the same block that counts it in flight
 * (a `SynchronizedRef` could only do that by running effects under its lock).
 */
interface State {
  /** The rules as enforced: configured, maybe the provider's, each with its guard margin. */
  rules: ReadonlyArray<WindowRule>
  readonly waiters: WaiterQueue
  inFlight: number
  /** Granted but not yet begun: counted in flight, and in the window as starting now. */
  pending: number
  pausedUntil: number
  averageCallMs: number
}

/**
 * The permits. In-process, callers start without a hop when they may, and every release starts
 * the waiters it unblocks; one dispatcher fiber handles what only time unblocks (the window, a
 * pause) and, with a shared store, asks it for each start. Which waiter goes next is the
 * `WaiterQueue`'s (owners in turn, interactive before background); whether one may start is
 * the `WindowStore`'s. A start is recorded when the call really begins, not when its turn is granted.
 * `local` holds this process's starts (the fast path reads it); `store` is `local` itself or a
 * shared window that keeps `local` up to date.
 */
export const makeRateLimiter = (
  options: RateLimiterOptions,
  local: LocalWindow,
  store: WindowStore
): Effect.Effect<RateLimiterService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { maxConcurrency, queueMax } = options
    const configured: WindowRule = { requests: options.requests, windowMs: options.windowMs }
    const guarded = (rule: WindowRule): WindowRule => ({ requests: rule.requests, windowMs: rule.windowMs + guardMs(rule.windowMs, options.marginMs) })
    const inProcess = store.inProcess
    const state: State = { rules: [guarded(configured)], waiters: new WaiterQueue(), inFlight: 0, pending: 0, pausedUntil: 0, averageCallMs: 0 }
    const wake = yield* Queue.sliding<void>(1)

    const grant = (waiter: Waiter) => {
      state.inFlight++
      state.pending++
      Deferred.unsafeDone(waiter.granted, Effect.void)
    }

    /** In-process: start every waiter that may start now, in turn, then tell the dispatcher if only time holds the rest. */
    const pump = (now: number) => {
      if (inProcess) {
        while (state.waiters.peek() !== undefined) {
          if (state.inFlight >= maxConcurrency || now < state.pausedUntil || local.waitMs(now, state.rules, state.pending) > 0) break
          grant(state.waiters.take()!)
        }
      }
      Metrics.queueDepth.unsafeUpdate(state.waiters.size, [])
      // A full set of lanes is unblocked by the next release, not by the dispatcher.
      if (state.waiters.peek() !== undefined && (!inProcess || state.inFlight < maxConcurrency)) wake.unsafeOffer(undefined)
    }

    /** An honest guess at when the caller refused now would have started, behind the `waiting` ahead of it. */
    const retryEstimate = (now: number, waiting: number): number => {
      const window = store.estimateMs(now, state.pending + waiting + 1, state.rules, state.pausedUntil)
      // Before any call has finished its length is unknown: assumed, rather than taken as zero
      // (which answered a full queue's first refusals with "retry in 1 s" whatever its length).
      const callMs = state.averageCallMs > 0 ? state.averageCallMs : assumedCallMs
      const lanes = Math.ceil((waiting + 1 + state.inFlight) / maxConcurrency) * callMs
      return Math.max(1, Math.ceil(Math.max(window, lanes)))
    }

    const enter = (owner: string | undefined, priority: Priority) => Effect.clockWith((clock) =>
      Effect.sync((): Ticket => {
        const now = preciseMs(clock)
        const waiting = state.waiters.size
        // Background waiters never hold an interactive caller back: neither in line nor in the queue's bound.
        const ahead = state.waiters.ahead(priority)
        const free = state.inFlight < maxConcurrency && now >= state.pausedUntil
        // Not ahead of earlier callers granted a moment ago that have not begun yet, either.
        if (inProcess && waiting === 0 && state.pending === 0 && free && local.waitMs(now, state.rules) === 0) {
          local.record(now)
          state.inFlight++
          Metrics.waitSeconds.unsafeUpdate(0, [])
          return now
        }
        // With a shared window even a caller that may start at once passes through the dispatcher's queue.
        if (ahead >= queueMax && !(!inProcess && waiting === 0 && free)) {
          Metrics.rejected.unsafeUpdate(1, [])
          return new RateLimitQueueFull({ retryAfterMs: retryEstimate(now, ahead), queueDepth: waiting })
        }
        const waiter = state.waiters.add(owner, priority, now)
        pump(now)
        return waiter
      })
    )

    /** The granted waiter begins: its start enters the window now. */
    const begin = (waiter: Waiter) =>
      Effect.clockWith((clock) => {
        const now = preciseMs(clock)
        state.pending--
        Metrics.waitSeconds.unsafeUpdate((now - waiter.arrivedAt) / 1000, [])
        const admission = waiter.member === undefined ? unshared : { waitMs: 0, member: waiter.member }
        return Effect.as(store.began(now, admission), { admission, startedAt: now })
      })

    const release = (startedAt: number) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = preciseMs(clock)
          state.inFlight--
          state.averageCallMs = state.averageCallMs === 0 ? now - startedAt : state.averageCallMs * 0.9 + (now - startedAt) * 0.1
          if (state.waiters.size > 0) pump(now)
        })
      )

    const cancel = (waiter: Waiter) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          if (waiter.state === "granted") {
            // Interrupted as its turn came: nothing started, so its lane and its slot are freed.
            state.pending--
            state.inFlight--
          } else {
            state.waiters.cancel(waiter)
          }
          pump(preciseMs(clock))
        })
      )

    /** The permit's effect, told where its start is counted (`UpstreamWritten`), then released. */
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>, startedAt: number, admission: Admission) =>
      Effect.clockWith((clock) => {
        let countedFrom = startedAt
        const written = () => {
          const now = preciseMs(clock)
          if (now - countedFrom < 1) return
          store.moved(countedFrom, now, admission)
          countedFrom = now
        }
        return Effect.ensuring(Effect.locally(effect, UpstreamWritten, written), release(startedAt))
      })

    const withPermit = <A, E, R>(
      effect: Effect.Effect<A, E, R>,
      owner?: string,
      priority: Priority = "interactive"
    ): Effect.Effect<A, E | RateLimitQueueFull, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(enter(owner, priority), (ticket): Effect.Effect<A, E | RateLimitQueueFull, R> => {
          if (typeof ticket === "number") return run(restore(effect), ticket, unshared)
          if (ticket instanceof RateLimitQueueFull) return Effect.fail(ticket)
          return restore(Deferred.await(ticket.granted)).pipe(
            Effect.onInterrupt(() => cancel(ticket)),
            Effect.zipRight(begin(ticket)),
            Effect.flatMap(({ admission, startedAt }) => run(restore(effect), startedAt, admission))
          )
        })
      )

    const sleepOrWake = (ms: number) => Effect.raceFirst(Effect.sleep(Math.max(1, Math.ceil(ms))), Queue.take(wake))

    /** What only time or a shared window unblocks: the head waits for it here. */
    const step: Effect.Effect<void> = Effect.gen(function*() {
      if (state.waiters.peek() === undefined || state.inFlight >= maxConcurrency) return yield* Queue.take(wake)
      const now = yield* currentMs
      if (now < state.pausedUntil) return yield* sleepOrWake(state.pausedUntil - now)
      const { member, waitMs } = yield* store.acquire(now, state.rules, state.pending)
      if (waitMs > 0) return yield* sleepOrWake(waitMs)
      if (inProcess) return pump(now)
      // With a shared window the slot is already counted; with nobody left to use it, it stays spent.
      const next = state.waiters.take()
      if (next !== undefined) {
        if (member !== undefined) next.member = member
        grant(next)
      }
      Metrics.queueDepth.unsafeUpdate(state.waiters.size, [])
    })

    yield* Effect.forkScoped(Effect.forever(step))

    const pause = (untilMs: number, cause: string) =>
      Effect.flatMap(currentMs, (now) => {
        if (untilMs <= now || untilMs <= state.pausedUntil) return Effect.void
        const extending = state.pausedUntil > now
        state.pausedUntil = untilMs
        wake.unsafeOffer(undefined)
        const fields = { cause, untilMs, pauseMs: Math.round(untilMs - now), queueDepth: state.waiters.size, inFlight: state.inFlight }
        // Other replicas learn of it from a shared window. One line per pause: later 429s of the same episode only move its end.
        return Effect.zipRight(
          store.pause(untilMs),
          extending
            ? Effect.logDebug("Rate limit: upstream pause extended").pipe(Effect.annotateLogs(fields))
            : Effect.logWarning("Rate limit: pausing every upstream call").pipe(
              Effect.annotateLogs(fields),
              Effect.zipRight(Metric.increment(Metric.tagged(Metrics.pauses, "cause", cause)))
            )
        )
      })

    const resume = Effect.flatMap(currentMs, (now) => {
      if (state.pausedUntil <= now) return Effect.void
      state.pausedUntil = 0
      pump(now)
      return Effect.zipRight(store.resume, Effect.logDebug("Rate limit: upstream pause ended early by a success"))
    })

    const adoptProviderLimit = (requests: number, windowMs: number) =>
      Effect.flatMap(currentMs, (now) => {
        const valid = Number.isSafeInteger(requests) && requests >= 1 && Number.isSafeInteger(windowMs) && windowMs >= 1
        // A rule allowing as many or more in a span no longer than the configured one is already implied.
        const implied = !valid || (requests >= configured.requests && windowMs <= configured.windowMs)
        state.rules = (implied ? [configured] : [configured, { requests, windowMs }]).map(guarded)
        if (!implied) local.ensureCapacity(requests)
        pump(now)
        return implied ? Effect.void : Effect.logInfo("Rate limit: adopting the provider's reported limit").pipe(
          Effect.annotateLogs({ requests, windowMs, configuredRequests: configured.requests, configuredWindowMs: configured.windowMs })
        )
      })

    const stats = Effect.map(currentMs, (now): RateLimiterStats => ({
      queueDepth: state.waiters.size,
      inFlight: state.inFlight,
      pausedUntilMs: state.pausedUntil > now ? state.pausedUntil : null,
      mode: store.mode()
    }))

    return { withPermit, pause, resume, adoptProviderLimit, stats }
  })

/** Where replicas sharing one Redis keep their window. */
export const defaultKeyPrefix = "policy-summarizer:ratelimit"

/** From the settings: in-process, or shared through Redis (with this replica's share as fallback) when `REDIS_URL` is set. */
export const fromSettings = (settings: AppConfig["rateLimit"], keyPrefix: string = defaultKeyPrefix) =>
  Effect.gen(function*() {
    const local = new LocalWindow(settings.requests)
    const store = Option.isSome(settings.redisUrl)
      ? yield* withLocalFallback(
        yield* makeRedisWindow({ url: settings.redisUrl.value, keyPrefix, commandTimeoutMs: 250 }, local),
        local,
        { replicas: settings.fallbackReplicas, configured: { requests: settings.requests, windowMs: settings.windowMs } }
      )
      : local
    return yield* makeRateLimiter(settings, local, store)
  })

/**
 * How fast and how many calls go upstream. Every upstream attempt runs inside `withPermit`:
 * no span of the window ever sees more starts than the limit, at most `maxConcurrency` run at once,
 * and waiters are served from a bounded queue, round-robin between owners and first-in first-out
 * within one owner, interactive ones before background ones.
 */
export class RateLimiter extends Context.Tag("RateLimiter")<RateLimiter, RateLimiterService>() {
  static readonly layer: Layer.Layer<RateLimiter, never, Config> = Layer.scoped(this, Effect.flatMap(Config, (c) => fromSettings(c.rateLimit)))
}
