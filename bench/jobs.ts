/**
 * Summary jobs across two replicas sharing PostgreSQL and Redis (`npm start`'s bundle), the
 * emulator upstream: one job of 1,000 items (200 with --quick) at a limit of 50 calls/s.
 *   steady:  both replicas drain the job; time to drain against the sliding-window ideal
 *            ((items - limit) / limit seconds: the first window's calls go at once), the
 *            busiest sliding second upstream, lost items, items called twice;
 *   killed:  the same with one replica SIGKILLed once half the items are done.
 * Run: npx tsx bench/jobs.ts [--quick] [--concurrency=N] (JOB_CONCURRENCY of each replica, default 32).
 * A harness around child processes, so plain async code.
 */
import { Effect, Exit, Scope } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { type Emulator, makeEmulator } from "../test/support/OpenRouterEmulator.js"
import { busiestWindow } from "../test/support/SlidingWindow.js"
import { query } from "../test/reliability/support.js"
import { API_KEY, serviceDatabase } from "./contenders.js"
import { type Child, freePort, projectRoot, start, stop, waitForPort } from "./processes.js"

const limit = 50
const windowMs = 1_000
const redisUrl = process.env["REDIS_TEST_URL"] ?? "redis://127.0.0.1:6379"
const concurrency = process.argv.find((a) => a.startsWith("--concurrency="))?.slice("--concurrency=".length) ?? "32"

export interface JobsScenario {
  readonly name: string
  readonly items: number
  readonly drainMs: number
  readonly idealMs: number
  /** Ideal over actual: the share of the allowed rate the job used. */
  readonly rateUsed: number
  readonly busiestSecond: number
  /** The same over 850 ms: arrivals bunch by up to ~150 ms between the limiter's permit and the wire. */
  readonly busiestJitterTolerant: number
  readonly upstreamCalls: number
  readonly lost: number
  readonly calledTwice: number
  /** Items running at the kill (the most that may be called twice), or null without a kill. */
  readonly inFlightAtKill: number | null
  readonly perReplica: ReadonlyArray<number>
}

const http = async (port: number, method: string, path: string, body?: unknown) => {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: response.status, body: await response.json() as any }
}

const itemOf = (i: number) => ({
  id: `item-${i}`,
  before: `# Privacy policy\n\nClause benchref${i}q: we keep your account data for 30 days.\n`,
  after: `# Privacy policy\n\nClause benchref${i}q: we keep your account data for 90 days.\n`
})

const replica = async (name: string, emulator: Emulator, databaseUrl: string) => {
  const port = await freePort()
  const dataDir = mkdtempSync(Path.join(tmpdir(), `bench-jobs-${name}-`))
  const child = start(`replica-${name}`, ["dist/main.js"], {
    env: {
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      REDIS_URL: redisUrl,
      OPENROUTER_BASE_URL: emulator.baseUrl,
      OPENROUTER_API_KEY: API_KEY,
      OPENROUTER_APP_TITLE: `replica-${name}`,
      SUMMARY_CACHE_TTL_MS: "0",
      SUMMARY_FORMAT: "text",
      LLM_RATE_LIMIT_REQUESTS: String(limit),
      LLM_RATE_LIMIT_WINDOW_MS: String(windowMs),
      LLM_MAX_CONCURRENCY: "64",
      JOB_CONCURRENCY: concurrency,
      LOG_LEVEL: "error",
      HOST: "127.0.0.1",
      PORT: String(port)
    }
  })
  await waitForPort(child, port)
  return { name, port, child, dataDir }
}

const scenario = async (name: string, items: number, kill: boolean): Promise<JobsScenario> => {
  const scope = Effect.runSync(Scope.make())
  const emulator = await Effect.runPromise(Scope.extend(makeEmulator({ latencyMs: 50 }), scope))
  const db = await serviceDatabase()
  const replicas: Array<{ name: string; port: number; child: Child; dataDir: string }> = []
  try {
    replicas.push(...await Promise.all(["a", "b"].map((n) => replica(n, emulator, db.url))))
    // One summary each, so both processes are warm before the clock starts.
    await Promise.all(replicas.map((r) => http(r.port, "POST", "/v1/summaries", itemOf(-1 - replicas.indexOf(r)))))
    await new Promise((resolve) => setTimeout(resolve, windowMs * 1.5))
    emulator.reset()
    const submitted = await http(replicas[0]!.port, "POST", "/v1/summary-jobs", { items: Array.from({ length: items }, (_, i) => itemOf(i)) })
    if (submitted.status !== 202) throw new Error(`submit answered ${submitted.status}: ${JSON.stringify(submitted.body)}`)
    const jobId = submitted.body.jobId as string
    let inFlightAtKill: number | null = null
    let job: any
    for (;;) {
      job = (await http(replicas[0]!.port, "GET", `/v1/summary-jobs/${jobId}`)).body
      if (job.status === "done") break
      if (kill && inFlightAtKill === null && job.counts.summarized >= items / 2) {
        replicas[1]!.child.process.kill("SIGKILL")
        await replicas[1]!.child.exited
        inFlightAtKill = Number((await Effect.runPromise(query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM summary_job_items WHERE status = 'running'")))[0]!.n)
      }
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    const calls = emulator.calls.filter((c) => /benchref\d+q/.test(JSON.stringify(c.body)))
    const perRef = new Map<string, number>()
    for (const c of calls) {
      const ref = /benchref\d+q/.exec(JSON.stringify(c.body))![0]
      perRef.set(ref, (perRef.get(ref) ?? 0) + 1)
    }
    const drainMs = new Date(job.finishedAt).getTime() - new Date(job.createdAt).getTime()
    const idealMs = ((items - limit) / limit) * windowMs
    return {
      name,
      items,
      drainMs,
      idealMs,
      rateUsed: idealMs / drainMs,
      busiestSecond: busiestWindow(calls.map((c) => c.at), windowMs),
      busiestJitterTolerant: busiestWindow(calls.map((c) => c.at), windowMs - 150),
      upstreamCalls: calls.length,
      lost: items - (job.counts.summarized + job.counts.fallback),
      calledTwice: [...perRef.values()].filter((n) => n > 1).length,
      inFlightAtKill,
      perReplica: ["replica-a", "replica-b"].map((title) => calls.filter((c) => c.headers["x-title"] === title).length)
    }
  } finally {
    await Promise.all(replicas.map((r) => stop(r.child)))
    for (const r of replicas) rmSync(r.dataDir, { recursive: true, force: true })
    await db.drop()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export const run = async (quick: boolean): Promise<ReadonlyArray<JobsScenario>> => {
  execFileSync("npm", ["run", "-s", "build"], { cwd: projectRoot, stdio: "inherit" })
  const items = quick ? 200 : 1_000
  const results = [await scenario("steady", items, false), await scenario("killed", items, true)]
  for (const r of results) console.log(JSON.stringify(r))
  return results
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run(process.argv.includes("--quick"))
  process.exit(0)
}
