import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Logger, LogLevel } from "effect"
import type { Fault } from "../support/OpenRouterEmulator.js"
import { makeTcpProxy } from "../support/TcpProxy.js"
import { makeTestApp } from "../support/TestApp.js"
import { postJson } from "./Client.js"
import { count, eventually, freshChange, freshDatabase, ledgerRows, ledgerRowsBy, outcomeOf, readiness, report, sized, tally, viaPort } from "./support.js"

const inFlight = 32
const timeoutMs = 1_000

/** A fifth of the calls fail, at random, with every kind of fault: most are retried, some are final. */
const randomFaults: ReadonlyArray<Fault> = [
  { kind: "status", status: 500 },
  { kind: "status", status: 502 },
  { kind: "status", status: 503 },
  { kind: "status", status: 408 },
  { kind: "drop" },
  { kind: "cut_body" },
  { kind: "malformed_json" },
  { kind: "error_in_200" },
  { kind: "rate_limited", resetInMs: 50 },
  { kind: "delay", ms: timeoutMs + 500 },
  { kind: "status", status: 400 },
  { kind: "status", status: 402 },
  { kind: "status", status: 403 },
  { kind: "daily_quota" }
]

const env = (extra: Record<string, string> = {}) => ({
  env: {
    OPENROUTER_TIMEOUT_MS: String(timeoutMs),
    LLM_RATE_LIMIT_REQUESTS: "1000000",
    LLM_RATE_LIMIT_WINDOW_MS: "1000",
    LLM_MAX_CONCURRENCY: "64",
    // The breaker stays in play, with a cooldown short enough not to swallow the run.
    LLM_CIRCUIT_THRESHOLD: "10",
    LLM_CIRCUIT_COOLDOWN_MS: "1000",
    SUMMARY_CACHE_TTL_MS: "0",
    ...extra
  },
  emulator: { latencyMs: 10 }
})

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

describe("load with faults", () => {
  it.scopedLive("summaries at 32 in flight while a fifth of the upstream calls fail: every request answered 200, a ledger row per call", () =>
    Effect.gen(function*() {
      const total = sized(150, 500)
      const db = yield* freshDatabase("load")
      const app = yield* makeTestApp(env({ DATABASE_URL: db.url }))
      const port = Number(new URL(app.url).port)
      app.emulator.failRandomly(0.2, randomFaults, 7)

      const started = Date.now()
      const outcomes = yield* Effect.forEach(
        Array.from({ length: total }),
        () => Effect.map(Effect.either(postJson(port, "/v1/summaries", freshChange())), (r) => outcomeOf(r._tag === "Right" ? r.right : r.left)),
        { concurrency: inFlight }
      )
      const wall = Date.now() - started

      const calls = app.emulator.completionCount()
      const rows = yield* ledgerRows(db.url)
      const non200 = count(outcomes, (o) => !o.startsWith("200 "))
      yield* report(
        `load with faults: ${total} requests at ${inFlight} in flight in ${seconds(wall)}, ${tally(outcomes)}; ` +
          `${calls} upstream calls (${app.emulator.injectedFaults()} faults injected), ${rows} ledger rows (${yield* ledgerRowsBy(db.url, "status")}), ${non200} non-200`
      )
      expect(non200, tally(outcomes)).toBe(0)
      expect(count(outcomes, (o) => o === "200 summarized")).toBeGreaterThan(total / 2)
      expect(app.emulator.injectedFaults()).toBeGreaterThan(0)
      expect(rows).toBe(calls)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

  it.scopedLive("the database cut in the middle of that load: no 5xx, the rows wait in the spool, and the ledger is exact once it is back", () =>
    Effect.gen(function*() {
      const cutMs = sized(4_000, 10_000)
      const db = yield* freshDatabase("cut")
      const proxy = yield* makeTcpProxy({ host: db.host, port: db.port })
      const app = yield* makeTestApp(env({ DATABASE_URL: viaPort(db.url, proxy.port) }))
      const port = Number(new URL(app.url).port)
      app.emulator.failRandomly(0.2, randomFaults, 11)

      let phase: "before" | "cut" | "after" = "before"
      let running = true
      const outcomes: Array<{ readonly phase: string; readonly outcome: string }> = []
      const worker = Effect.whileLoop({
        while: () => running,
        body: () => Effect.either(postJson(port, "/v1/summaries", freshChange())),
        step: (r) => outcomes.push({ phase, outcome: outcomeOf(r._tag === "Right" ? r.right : r.left) })
      })
      const load = yield* Effect.fork(Effect.all(Array.from({ length: inFlight }, () => worker), { concurrency: "unbounded", discard: true }))

      yield* Effect.sleep("1500 millis")
      phase = "cut"
      proxy.cut()
      const cutAt = Date.now()
      const probes: Array<{ readonly status: number; readonly spoolDepth: number | null }> = []
      while (Date.now() - cutAt < cutMs) {
        probes.push(yield* readiness(port))
        yield* Effect.sleep("500 millis")
      }
      proxy.restore()
      phase = "after"
      yield* Effect.sleep("2 seconds")
      running = false
      yield* Fiber.join(load)

      const drained = Date.now()
      yield* eventually("the spool to drain", Effect.map(readiness(port), (r) => r.status === 200 && r.spoolDepth === 0))
      const drainMs = Date.now() - drained
      const calls = app.emulator.completionCount()
      const rows = yield* ledgerRows(db.url)
      const during = outcomes.filter((o) => o.phase === "cut")
      const non200 = count(outcomes, (o) => !o.outcome.startsWith("200 "))
      const maxDepth = Math.max(0, ...probes.map((p) => p.spoolDepth ?? 0))
      yield* report(
        `database cut: ${seconds(cutMs)} cut in ${outcomes.length} requests at ${inFlight} in flight (${during.length} during the cut), ` +
          `${tally(outcomes.map((o) => o.outcome))}; readiness during the cut: ${tally(probes.map((p) => String(p.status)))}, spool depth up to ${maxDepth}; ` +
          `spool drained ${seconds(drainMs)} after the load; ${calls} upstream calls (${app.emulator.injectedFaults()} faults injected), ${rows} ledger rows, ${calls - rows} lost, ${non200} non-200`
      )
      expect(non200, tally(outcomes.map((o) => `${o.phase} ${o.outcome}`))).toBe(0)
      expect(during.length).toBeGreaterThan(0)
      expect(maxDepth, "rows were spooled while the database was cut").toBeGreaterThan(0)
      expect(probes.some((p) => p.status === 503), "readiness reports the database down").toBe(true)
      expect(rows).toBe(calls)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))
})
