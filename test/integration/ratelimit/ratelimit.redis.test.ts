import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Logger } from "effect"
import { createConnection, createServer, type Server, type Socket } from "node:net"
import type { AddressInfo } from "node:net"
import { performance } from "node:perf_hooks"
import { Config } from "../../../src/Config.js"
import { RateLimiter } from "../../../src/llm/RateLimiter.js"
import { rateLimiterUnder } from "../../support/RateLimiterLayer.js"
import { type Emulator, makeEmulator } from "../../support/OpenRouterEmulator.js"
import { redisHost, redisPort, redisSkipReason, redisTestUrl } from "../../support/Redis.js"
import { busiestWindow } from "../../unit/llm/ratelimitSupport.js"

const redisUrl = redisTestUrl

/**
 * Starts are taken as the calls begin, a little after the limiter records them (more when CI runs
 * test files side by side). A limit not shared at all would put 10 starts in one window.
 */
const limiterJitterMs = 10

const replica = (keyPrefix: string, vars: Readonly<Record<string, string>>) =>
  Effect.map(
    Layer.build(rateLimiterUnder(keyPrefix).pipe(
      Layer.provide(Config.layer),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({
        LLM_RATE_LIMIT_REQUESTS: "5",
        LLM_RATE_LIMIT_WINDOW_MS: "1000",
        LLM_MAX_CONCURRENCY: "10",
        LLM_QUEUE_MAX: "100",
        LLM_RATE_LIMIT_FALLBACK_REPLICAS: "2",
        ...vars
      })))))
    )),
    Context.get(RateLimiter)
  )

const uniquePrefix = () => `test:ratelimit:${process.pid}:${Math.random().toString(36).slice(2)}`

/** One real completion request to the emulator; returns the HTTP status. */
const post = (emulator: Emulator, callId = "warm-up") =>
  Effect.tryPromise(async () => {
    const response = await fetch(`${emulator.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer test", "content-type": "application/json", "x-call-id": callId },
      body: JSON.stringify({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
    })
    await response.arrayBuffer()
    return response.status
  })

/** One upstream call through the limiter, noting when the limiter let it start. */
const completion = (emulator: Emulator, limiter: Context.Tag.Service<RateLimiter>, starts: Array<number>) =>
  limiter.withPermit(Effect.suspend(() => post(emulator, String(starts.push(performance.now()) - 1))))

const burst = (n: number, emulator: Emulator, limiter: Context.Tag.Service<RateLimiter>, starts: Array<number>) =>
  Effect.forEach(Array.from({ length: n }), () => completion(emulator, limiter, starts), { concurrency: "unbounded" })

/** A port nothing listens on. */
const closedPort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A TCP relay to the real Redis that the test can cut and restore, like a network partition. */
const redisRelay = Effect.acquireRelease(
  Effect.async<{ url: string; cut: () => Promise<void>; restore: () => Promise<void>; close: () => Promise<void> }>((resume) => {
    const sockets = new Set<Socket>()
    let server: Server
    const listen = (port: number) =>
      new Promise<number>((ok) => {
        server = createServer((client) => {
          const upstream = createConnection(redisPort, redisHost)
          sockets.add(client).add(upstream)
          client.pipe(upstream).pipe(client)
          const drop = () => (client.destroy(), upstream.destroy())
          client.on("error", drop).on("close", drop)
          upstream.on("error", drop).on("close", drop)
        })
        server.listen(port, "127.0.0.1", () => ok((server.address() as AddressInfo).port))
      })
    const cut = () =>
      new Promise<void>((ok) => {
        server.close(() => ok())
        sockets.forEach((s) => s.destroy())
        sockets.clear()
      })
    void listen(0).then((port) =>
      resume(Effect.succeed({ url: `redis://127.0.0.1:${port}`, cut, restore: () => listen(port).then(() => undefined), close: cut }))
    )
  }),
  (relay) => Effect.promise(() => relay.close())
)

describe.skipIf(redisSkipReason !== null)("RateLimiter with Redis (real time)", () => {
  it.scopedLive("two replicas sharing Redis stay together within 5 per second, as the upstream sees it", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const prefix = uniquePrefix()
      const a = yield* replica(prefix, { REDIS_URL: redisUrl })
      const b = yield* replica(prefix, { REDIS_URL: redisUrl })
      expect((yield* a.stats).mode).toBe("redis")
      expect((yield* b.stats).mode).toBe("redis")

      // The first fetches of a process spend tens of ms setting up connections; that would show as
      // jitter here, so open them before measuring.
      yield* Effect.forEach(Array.from({ length: 10 }), () => post(emulator), { concurrency: "unbounded" })
      emulator.reset()

      const starts: Array<number> = []
      const began = performance.now()
      const statuses = yield* Effect.all([burst(20, emulator, a, starts), burst(20, emulator, b, starts)], {
        concurrency: "unbounded"
      })
      const tookMs = performance.now() - began

      expect(statuses.flat().filter((s) => s === 200)).toHaveLength(40)
      const arrivals = emulator.calls.map((c) => c.hrAt)
      const timeline = (times: ReadonlyArray<number>) => [...times].sort((x, y) => x - y).map((t) => Math.round(t - began)).join(",")
      expect(busiestWindow(starts, 1_000 - limiterJitterMs), `starts (ms): ${timeline(starts)}`).toBeLessThanOrEqual(5)
      expect(arrivals).toHaveLength(40)
      // The way to the server (one event loop serves both ends here) adds its own varying delay:
      // tolerate exactly the spread measured between each call's start and its arrival.
      const delays = emulator.calls.map((c) => c.hrAt - starts[Number(c.headers["x-call-id"])]!)
      const transport = Math.max(...delays) - Math.min(...delays)
      expect(busiestWindow(arrivals, 1_000 - transport), `arrivals (ms): ${timeline(arrivals)}; transport spread ${transport} ms`)
        .toBeLessThanOrEqual(5)
      // 40 at 5 per second in all: eight windows, the last batch starting at about 7 s. Two
      // replicas limiting only themselves would have finished in about 3 s.
      expect(tookMs).toBeGreaterThan(6_900)
      expect(tookMs).toBeLessThan(8_500)
    }), { timeout: 30_000 })

  it.scopedLive("a provider pause seen by one replica holds the other replica's starts too", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const prefix = uniquePrefix()
      const a = yield* replica(prefix, { REDIS_URL: redisUrl })
      const b = yield* replica(prefix, { REDIS_URL: redisUrl })
      const resetAt = Date.now() + 1_200
      yield* a.pause(resetAt, "429 from test")

      const starts: Array<number> = []
      const statuses = yield* burst(3, emulator, b, starts)
      expect(statuses.every((s) => s === 200)).toBe(true)
      const firstStart = Math.min(...starts) - performance.now() + Date.now()
      expect(firstStart).toBeGreaterThanOrEqual(resetAt - limiterJitterMs)
      expect(emulator.calls).toHaveLength(3)
    }), { timeout: 30_000 })

  it.scopedLive("with Redis unreachable from the start, a replica limits itself to its share and says so once", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const port = yield* closedPort
      const lines: Array<string> = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void lines.push(String(message))))
      const limiter = yield* Effect.provide(replica(uniquePrefix(), { REDIS_URL: `redis://127.0.0.1:${port}` }), capture)
      expect((yield* limiter.stats).mode).toBe("local-fallback")

      const starts: Array<number> = []
      const statuses = yield* Effect.provide(burst(6, emulator, limiter, starts), capture)
      expect(statuses.every((s) => s === 200)).toBe(true)
      // 5 per second over 2 expected replicas: 2 per second here.
      expect(busiestWindow(starts, 1_000 - limiterJitterMs)).toBe(2)
      expect(Math.max(...starts) - Math.min(...starts)).toBeGreaterThan(2_000 - limiterJitterMs)
      expect(lines.filter((l) => l.includes("Redis unreachable"))).toHaveLength(1)
    }), { timeout: 30_000 })

  it.scopedLive("when Redis goes away mid-run the replica falls back to its share, then returns to Redis", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const relay = yield* redisRelay
      const lines: Array<string> = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void lines.push(String(message))))
      const limiter = yield* Effect.provide(replica(uniquePrefix(), { REDIS_URL: relay.url }), capture)
      expect((yield* limiter.stats).mode).toBe("redis")

      const starts: Array<number> = []
      yield* Effect.provide(burst(5, emulator, limiter, starts), capture)
      yield* Effect.promise(() => relay.cut())
      const statuses = yield* Effect.provide(burst(4, emulator, limiter, starts), capture)
      expect(statuses.every((s) => s === 200)).toBe(true)
      expect((yield* limiter.stats).mode).toBe("local-fallback")
      // Starts made through Redis still count in the local share: no window ever holds more than 5,
      // and the 4 after the cut go at 2 per second.
      expect(busiestWindow(starts, 1_000 - limiterJitterMs)).toBeLessThanOrEqual(5)
      expect(busiestWindow(starts.slice(5), 1_000 - limiterJitterMs)).toBeLessThanOrEqual(2)
      expect(lines.filter((l) => l.includes("Redis unreachable"))).toHaveLength(1)

      yield* Effect.promise(() => relay.restore())
      yield* Effect.sleep("1500 millis")
      yield* Effect.provide(burst(1, emulator, limiter, starts), capture)
      expect((yield* limiter.stats).mode).toBe("redis")
      expect(lines.filter((l) => l.includes("Redis reachable again"))).toHaveLength(1)
    }), { timeout: 30_000 })
})

// Registered only when Redis is missing, so a run with Redis counts no phantom skip.
const skipReason = redisSkipReason
if (skipReason !== null) {
  describe("RateLimiter with Redis (real time)", () => {
    it.skip(skipReason, () => {})
  })
}
