import { Data, Effect, Redacted } from "effect"
import type { Scope } from "effect"
import type { LocalWindow } from "./LocalWindow.js"
import type { WindowRule } from "./SlidingWindow.js"
import { type Admission, afterPauseMs, type WindowStore } from "./WindowStore.js"

export class RedisUnavailable extends Data.TaggedError("RedisUnavailable")<{ readonly message: string }> {}

/**
 * One sliding-window log shared by every replica: a sorted set of start times, scored by Redis's
 * own clock (in microseconds) so replicas with skewed clocks still agree. Atomically: while a
 * provider pause (KEYS[2], Unix ms) lasts, answer its remaining milliseconds; drop starts older
 * than the longest window; if every rule has room record this start and answer 0, otherwise
 * answer the milliseconds until the start that blocks leaves its window.
 */
const acquireScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function us(x) return string.format('%.0f', x) end
local paused = tonumber(redis.call('GET', KEYS[2]) or '0') * 1000
if paused > now then return math.ceil((paused - now) / 1000) end
local longest = 0
for i = 2, #ARGV, 2 do
  local w = tonumber(ARGV[i + 1]) * 1000
  if w > longest then longest = w end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', us(now - longest))
local wait = 0
for i = 2, #ARGV, 2 do
  local limit = tonumber(ARGV[i])
  local w = tonumber(ARGV[i + 1]) * 1000
  local count = redis.call('ZCOUNT', KEYS[1], '(' .. us(now - w), '+inf')
  if count >= limit then
    local blocking = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. us(now - w), '+inf', 'WITHSCORES', 'LIMIT', count - limit, 1)
    local free = tonumber(blocking[2]) + w - now
    if free > wait then wait = free end
  end
end
if wait == 0 then
  redis.call('ZADD', KEYS[1], us(now), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.ceil(longest / 1000))
end
return math.ceil(wait / 1000)
`

/** Every replica holds its starts until the later of the current pause and this one (Unix ms). */
const pauseScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = tonumber(ARGV[1])
if untilMs > now and untilMs > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', untilMs - now)
end
return 0
`

/**
 * The call really began: move its start to now. Admission and beginning are apart by a reply and
 * a turn of the event loop, by a varying amount; counting the later time keeps the window true for
 * the calls as they begin, not as they were admitted. Run again when the request reaches the wire
 * later still (see `UpstreamWritten`).
 */
const beganScript = `
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2])), ARGV[1])
return 0
`

interface WithScripts {
  slidingWindowAcquire(windowKey: string, pauseKey: string, member: string, ...rules: Array<number>): Promise<number>
  sharedPause(pauseKey: string, untilMs: number): Promise<number>
  startBegan(windowKey: string, member: string): Promise<number>
}

/** The window every replica shares; it fails with `RedisUnavailable` (see `withLocalFallback`). */
export interface RedisWindow extends WindowStore<RedisUnavailable> {
  /** Whether the connection is up now (ioredis reconnects in the background). */
  readonly connected: () => boolean
}

export interface RedisWindowOptions {
  readonly url: Redacted.Redacted<string>
  /** The window is kept at `{keyPrefix}:window`, a provider pause at `{keyPrefix}:pause`. */
  readonly keyPrefix: string
  /** A Redis that does not answer within this counts as unreachable. */
  readonly commandTimeoutMs: number
}

/**
 * Connects (without failing when Redis is down: the caller falls back) and closes with the scope.
 * `own` is this replica's record of its starts: checked first (a full window needs no round trip)
 * and kept up to date, for the fallback.
 */
export const makeRedisWindow = (options: RedisWindowOptions, own: LocalWindow): Effect.Effect<RedisWindow, never, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      // Loaded only when REDIS_URL is set: a server without Redis does not hold the client's code.
      Effect.map(Effect.promise(() => import("ioredis")), ({ Redis }) =>
        new Redis(Redacted.value(options.url), {
          lazyConnect: true,
          // Fail at once while disconnected instead of queueing: the limiter then uses its local share.
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          connectTimeout: 1_000,
          commandTimeout: options.commandTimeoutMs,
          retryStrategy: (times) => Math.min(times * 100, 1_000)
        })
      ),
      (client) => Effect.sync(() => client.disconnect())
    )
    // Connection errors surface as failed commands; the event only needs a listener.
    client.on("error", () => undefined)
    client.defineCommand("slidingWindowAcquire", { numberOfKeys: 2, lua: acquireScript })
    client.defineCommand("sharedPause", { numberOfKeys: 1, lua: pauseScript })
    client.defineCommand("startBegan", { numberOfKeys: 1, lua: beganScript })
    const scripts = client as unknown as WithScripts
    const windowKey = `${options.keyPrefix}:window`
    const pauseKey = `${options.keyPrefix}:pause`
    yield* Effect.tryPromise(() => client.connect()).pipe(Effect.ignore)

    const replica = Math.random().toString(36).slice(2, 10)
    let sequence = 0
    const call = <A>(f: () => Promise<A>) =>
      Effect.tryPromise({
        try: f,
        catch: (e) => new RedisUnavailable({ message: e instanceof Error ? e.message : String(e) })
      })
    const scope = yield* Effect.scope
    const acquire = (now: number, rules: ReadonlyArray<WindowRule>, pending: number): Effect.Effect<Admission, RedisUnavailable> =>
      Effect.suspend(() => {
        // This replica's own starts, recorded as they really began, never exceed the limit either.
        const ownWaitMs = own.waitMs(now, rules, pending)
        if (ownWaitMs > 0) return Effect.succeed({ waitMs: ownWaitMs })
        const member = `${replica}:${sequence++}`
        return call(() => scripts.slidingWindowAcquire(windowKey, pauseKey, member, ...rules.flatMap((r) => [r.requests, r.windowMs])))
          .pipe(Effect.map((waitMs): Admission => ({ waitMs, member })))
      })
    // Recorded here at once; in Redis without waiting for the answer.
    const began = (now: number, admission: Admission) =>
      Effect.suspend(() => {
        own.record(now)
        const member = admission.member
        return member === undefined ? Effect.void : Effect.asVoid(Effect.forkIn(Effect.ignore(call(() => scripts.startBegan(windowKey, member))), scope))
      })
    const moved = (from: number, to: number, admission: Admission) => {
      own.moved(from, to)
      const member = admission.member
      // Called from the transport's callback, outside any fiber: the client's promise is the edge here.
      if (member !== undefined) scripts.startBegan(windowKey, member).catch(() => undefined)
    }
    return {
      inProcess: false,
      mode: () => "redis",
      acquire,
      began,
      moved,
      pause: (untilMs) => Effect.asVoid(call(() => scripts.sharedPause(pauseKey, Math.ceil(untilMs)))),
      resume: Effect.asVoid(call(() => client.del(pauseKey))),
      // Redis holds the other replicas' starts: as if the window were full from now on.
      estimateMs: (now, position, rules, pausedUntil) =>
        Math.max(...rules.map((r) => Math.ceil(position / r.requests) * r.windowMs), afterPauseMs(now, position, rules, pausedUntil)),
      connected: () => client.status === "ready"
    }
  })
