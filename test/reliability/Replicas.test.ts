import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as SmtpSink from "../integration/budget/SmtpSink.js"
import { makeEmulator } from "../support/OpenRouterEmulator.js"
import { redisSkipReason, redisTestUrl } from "../support/Redis.js"
import { freePort, startService } from "../support/ServiceProcess.js"
import { postJson } from "./Client.js"
import { busiestWindow } from "../support/SlidingWindow.js"
import {
  count,
  eventually,
  freshChange,
  freshDatabase,
  ledgerRows,
  outcomeOf,
  readiness,
  report,
  serviceEnv,
  sized,
  tally,
  tempDir,
  tightestSpan
} from "./support.js"

const limit = 5
const windowMs = 1_000
/**
 * The limiter counts permits; the emulator sees each call later, by however long the replica's
 * event loop takes to put it on the wire: up to ~150 ms on a loaded 2-core machine. A limiter
 * that let one call too many through would show 6 arrivals within a few ms, far inside this.
 */
const jitterMs = 150
const levels = ["0.5", "0.8", "1.0"]

describe.skipIf(redisSkipReason !== null)("two replicas", () => {
  it.scopedLive("sharing PostgreSQL and Redis under concurrent load: the combined upstream rate holds the limit, and each alert level goes out once", () =>
    Effect.gen(function*() {
      const total = sized(30, 60)
      const emulator = yield* makeEmulator({ latencyMs: 50 })
      const db = yield* freshDatabase("replicas")
      const smtpPort = yield* freePort
      const mail = yield* SmtpSink.start(smtpPort)
      const shared = {
        REDIS_URL: redisTestUrl,
        LLM_RATE_LIMIT_REQUESTS: String(limit),
        LLM_RATE_LIMIT_WINDOW_MS: String(windowMs),
        // A tiny daily budget that the load crosses at every level.
        COST_ALERT_DAILY_USD: "0.001",
        COST_ALERT_LEVELS: levels.join(","),
        COST_ALERT_INTERVAL_MS: "500",
        SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
        COST_ALERT_RECIPIENTS: "ops@example.com",
        ALERT_FROM: "alerts@example.com"
      }
      // Both start at once: the migrations must hold against each other too.
      const replicas = yield* Effect.all(
        ["a", "b"].map((name) => Effect.flatMap(tempDir(`replica-${name}`), (dir) => startService(serviceEnv(emulator, db.url, dir, shared)))),
        { concurrency: "unbounded" }
      )
      const modes = yield* Effect.forEach(replicas, (r) => readiness(r.port))
      // A cold process's first SDK calls take a few hundred ms between the permit and the wire,
      // which bunches their arrivals: warm both up, let the window pass, then measure.
      yield* Effect.forEach(replicas, (r) => postJson(r.port, "/v1/summaries", freshChange()), { concurrency: "unbounded" })
      const warmUpCalls = emulator.completionCount()
      yield* Effect.sleep(windowMs * 1.5)
      emulator.reset()

      const started = Date.now()
      const outcomes = yield* Effect.forEach(
        Array.from({ length: total }, (_, i) => replicas[i % replicas.length]!),
        (replica) => Effect.map(Effect.either(postJson(replica.port, "/v1/summaries", freshChange())), (r) => outcomeOf(r._tag === "Right" ? r.right : r.left)),
        { concurrency: 16 }
      )
      const wall = Date.now() - started
      const arrivals = emulator.calls.map((c) => c.at)
      const busiest = busiestWindow(arrivals, windowMs - jitterMs)
      const tightest = tightestSpan(arrivals, limit + 1)
      const span = Math.max(...arrivals) - Math.min(...arrivals)

      // Several monitor runs on both replicas, after every level was crossed.
      yield* eventually("an alert per level", Effect.map(mail.received, (m) => m.length >= levels.length), "20 seconds")
      yield* Effect.sleep("2 seconds")
      const received = yield* mail.received
      const subjects = received.map((m) => m.subject)
      const calls = emulator.completionCount() + warmUpCalls
      const rows = yield* ledgerRows(db.url)
      yield* report(
        `two replicas: ${total} requests at 16 in flight over 2 replicas (rate limiter ${modes.map((m) => m.rateLimiterMode).join("/")}) in ${(wall / 1000).toFixed(1)} s, ${tally(outcomes)}; ` +
          `${arrivals.length} upstream calls (after ${warmUpCalls} to warm up) over ${(span / 1000).toFixed(1)} s (${((arrivals.length - 1) / Math.max(0.001, span / 1000)).toFixed(2)}/s), busiest ${windowMs - jitterMs} ms window ${busiest} (limit ${limit}), ${limit + 1} consecutive calls spanned at least ${tightest} ms; ` +
          `${rows} ledger rows; ${received.length} alert mails: ${tally(subjects)}`
      )
      const switches = replicas.flatMap((r, i) => r.lines().filter((l) => l.includes("Rate limit:")).map((l) => `replica ${i}: ${l}`))
      if (busiest > limit) {
        const first = Math.min(...arrivals)
        yield* report(`two replicas: arrivals (ms) ${[...arrivals].sort((a, b) => a - b).map((a) => a - first).join(" ")}; limiter mode changes:\n${switches.join("\n")}`)
      }
      expect(count(outcomes, (o) => !o.startsWith("200 ")), tally(outcomes)).toBe(0)
      expect(count(outcomes, (o) => o === "200 summarized")).toBe(total)
      expect(modes.map((m) => m.rateLimiterMode)).toEqual(["redis", "redis"])
      expect(busiest).toBeLessThanOrEqual(limit)
      expect(rows).toBe(calls)
      expect(received.length).toBe(levels.length)
      expect(new Set(subjects).size).toBe(levels.length)
    }))
})

// Registered only when Redis is missing, so a run with Redis counts no phantom skip.
const skipReason = redisSkipReason
if (skipReason !== null) {
  describe("two replicas", () => {
    it.skip(skipReason, () => {})
  })
}
