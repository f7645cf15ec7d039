import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule, type Scope } from "effect"
import { buildEntries } from "../../support/Build.js"
import { makeEmulator } from "../../support/OpenRouterEmulator.js"
import { redisSkipReason, redisTestUrl } from "../../support/Redis.js"
import { startService } from "../../support/ServiceProcess.js"
import { busiestWindow } from "../../support/SlidingWindow.js"
import { postJson, request } from "../../reliability/Client.js"
import { freshDatabase, query, serviceEnv, tempDir } from "../../reliability/support.js"
import { item, refsCalled } from "./support.js"

const submitJob = (port: number, items: ReadonlyArray<unknown>) =>
  Effect.map(postJson(port, "/v1/summary-jobs", { items }), (reply) => {
    expect(reply.status).toBe(202)
    return JSON.parse(reply.body).jobId as string
  })

const jobOf = (port: number, jobId: string) =>
  Effect.map(request(port, { path: `/v1/summary-jobs/${jobId}` }), (reply) => JSON.parse(reply.body))

const until = <A>(check: Effect.Effect<A, unknown>, ok: (a: A) => boolean, within = "60 seconds" as const) =>
  check.pipe(
    Effect.filterOrFail(ok, () => "not yet" as const),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo(within))),
    Effect.orDie
  )

/** A service draining a job at 40 calls/s, 8 items at a time; `databaseUrl` "" is the embedded database under its DATA_DIR. */
const drainingService = (name: string, items: number, databaseUrl: (name: string) => Effect.Effect<string, unknown, Scope.Scope>) =>
  Effect.gen(function*() {
    const { main } = yield* buildEntries
    const emulator = yield* makeEmulator({ latencyMs: 40 })
    const dbUrl = yield* databaseUrl(name)
    const dataDir = yield* tempDir(name)
    const env = serviceEnv(emulator, dbUrl, dataDir, {
      LOG_LEVEL: "warning",
      LLM_RATE_LIMIT_REQUESTS: "40",
      LLM_RATE_LIMIT_WINDOW_MS: "1000",
      JOB_CONCURRENCY: "8",
      SUMMARY_FORMAT: "text"
    })
    const start = startService(env, { bundle: main, readyTimeout: "60 seconds" })
    const first = yield* start
    const jobId = yield* submitJob(first.port, Array.from({ length: items }, () => item()))
    return { emulator, dbUrl, first, jobId, start }
  })

const onPostgres = (name: string) => Effect.map(freshDatabase(name), (db) => db.url)
const embedded = () => Effect.succeed("")

describe("summary jobs across processes", () => {
  it.scopedLive("200 items, the service SIGKILLed mid-drain and started again: every item final once, ledger rows match the upstream calls", () =>
    Effect.gen(function*() {
      const { emulator, dbUrl, first, jobId, start } = yield* drainingService("jobs-kill", 200, onPostgres)
      yield* until(jobOf(first.port, jobId), (job) => job.counts.summarized >= 60)
      yield* first.signal("SIGKILL")
      yield* first.exited
      const inFlight = yield* query<{ n: number }>(dbUrl, `SELECT count(*)::int AS n FROM summary_job_items WHERE status = 'running'`)
      const callsAtKill = emulator.completionCount()

      const second = yield* start
      const job = yield* until(jobOf(second.port, jobId), (j) => j.status === "done")
      expect(job.counts).toEqual({ queued: 0, running: 0, summarized: 200, fallback: 0, cancelled: 0 })

      const calls = emulator.completionCount()
      const refs = refsCalled(emulator.calls.map((c) => c.body))
      const perRef = new Map<string, number>()
      for (const ref of refs) perRef.set(ref, (perRef.get(ref) ?? 0) + 1)
      const twice = [...perRef.values()].filter((n) => n > 1).length
      expect(perRef.size).toBe(200)
      // Only an item running at the kill may be called again, and only once.
      expect(twice).toBeLessThanOrEqual(inFlight[0]!.n)
      expect(Math.max(...perRef.values())).toBeLessThanOrEqual(2)
      const [rows] = yield* query<{ n: number; items: number }>(dbUrl, `SELECT count(*)::int AS n, count(DISTINCT job_item_id)::int AS items FROM llm_api_usage`)
      expect(rows!.items).toBe(200)
      // A call answered upstream while its process died is the one kind of call the ledger cannot hold.
      expect(calls - rows!.n).toBeGreaterThanOrEqual(0)
      expect(calls - rows!.n).toBeLessThanOrEqual(inFlight[0]!.n)
      expect(callsAtKill).toBeLessThan(calls)
    }), { timeout: 120_000 })

  it.scopedLive("on the embedded database too: SIGKILLed mid-drain, started again on the same DATA_DIR, every item final once", () =>
    Effect.gen(function*() {
      // No DATABASE_URL: the service owns an embedded database under DATA_DIR, the queue's tables included.
      const { emulator, first, jobId, start } = yield* drainingService("jobs-kill-embedded", 120, embedded)
      yield* until(jobOf(first.port, jobId), (job) => job.counts.summarized >= 40)
      yield* first.signal("SIGKILL")
      yield* first.exited

      const second = yield* start
      // The killed process's items still show running until its heartbeat is found stale.
      const inFlight = (yield* jobOf(second.port, jobId)).counts.running as number
      const job = yield* until(jobOf(second.port, jobId), (j) => j.status === "done")
      expect(job.counts).toEqual({ queued: 0, running: 0, summarized: 120, fallback: 0, cancelled: 0 })
      const perRef = new Map<string, number>()
      for (const ref of refsCalled(emulator.calls.map((c) => c.body))) perRef.set(ref, (perRef.get(ref) ?? 0) + 1)
      expect(perRef.size).toBe(120)
      expect([...perRef.values()].filter((n) => n > 1).length).toBeLessThanOrEqual(inFlight)
      expect(Math.max(...perRef.values())).toBeLessThanOrEqual(2)
      const usage = yield* Effect.map(request(second.port, { path: "/v1/usage" }), (reply) => JSON.parse(reply.body))
      const calls = emulator.completionCount()
      expect(calls - usage.total.calls).toBeGreaterThanOrEqual(0)
      expect(calls - usage.total.calls).toBeLessThanOrEqual(inFlight)
    }), { timeout: 120_000 })

  it.scopedLive("a graceful stop (SIGTERM) mid-drain lets the running items finish: after the restart no item was called twice", () =>
    Effect.gen(function*() {
      const { emulator, dbUrl, first, jobId, start } = yield* drainingService("jobs-term", 100, onPostgres)
      yield* until(jobOf(first.port, jobId), (job) => job.counts.summarized >= 30)
      yield* first.signal("SIGTERM")
      const exit = yield* first.exited
      expect(exit.code).toBe(0)
      const [left] = yield* query<{ running: number; queued: number }>(dbUrl,
        `SELECT count(*) FILTER (WHERE status = 'running')::int AS running, count(*) FILTER (WHERE status = 'queued')::int AS queued FROM summary_job_items`)
      expect(left!.running).toBe(0)
      expect(left!.queued).toBeGreaterThan(0)

      const second = yield* start
      const job = yield* until(jobOf(second.port, jobId), (j) => j.status === "done")
      expect(job.counts.summarized).toBe(100)
      const refs = refsCalled(emulator.calls.map((c) => c.body))
      expect(refs).toHaveLength(100)
      expect(new Set(refs).size).toBe(100)
    }), { timeout: 120_000 })

  describe.skipIf(redisSkipReason !== null)("with Redis", () => {
    it.scopedLive(
      "two processes on one database and one Redis drain one job at 5 calls/s: never more than 5 upstream calls in any second, and both did work",
      () =>
        Effect.gen(function*() {
          const { main } = yield* buildEntries
          const emulator = yield* makeEmulator({ latencyMs: 30 })
          const db = yield* freshDatabase("jobs-replicas")
          const shared = {
            LOG_LEVEL: "warning",
            REDIS_URL: redisTestUrl,
            LLM_RATE_LIMIT_REQUESTS: "5",
            LLM_RATE_LIMIT_WINDOW_MS: "1000",
            JOB_CONCURRENCY: "4",
            SUMMARY_FORMAT: "text"
          }
          const replicas = yield* Effect.all(
            ["a", "b"].map((name) =>
              Effect.flatMap(tempDir(`jobs-${name}`), (dir) =>
                startService(serviceEnv(emulator, db.url, dir, { ...shared, OPENROUTER_APP_TITLE: `replica-${name}` }), { bundle: main, readyTimeout: "60 seconds" }))),
            { concurrency: "unbounded" }
          )
          const jobId = yield* submitJob(replicas[0]!.port, Array.from({ length: 30 }, () => item()))
          const job = yield* until(jobOf(replicas[1]!.port, jobId), (j) => j.status === "done")
          expect(job.counts.summarized).toBe(30)
          const completions = emulator.calls.filter((c) => /jobref\d+q/.test(JSON.stringify(c.body)))
          // Over a whole second, as upstream counts: the limiter's margin (20 ms) covers the way from start to arrival here.
          expect(busiestWindow(completions.map((c) => c.at), 1_000)).toBeLessThanOrEqual(5)
          const byReplica = new Map<string, number>()
          for (const c of completions) byReplica.set(c.headers["x-title"] ?? "", (byReplica.get(c.headers["x-title"] ?? "") ?? 0) + 1)
          expect(byReplica.get("replica-a") ?? 0).toBeGreaterThan(0)
          expect(byReplica.get("replica-b") ?? 0).toBeGreaterThan(0)
        }),
      { timeout: 120_000 }
    )
  })
})
