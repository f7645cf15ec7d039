/**
 * Summary jobs across two replicas sharing PostgreSQL and Redis (`npm start`'s bundle), the
 * emulator upstream in a process of its own (answering in 50 ms; like a real upstream, its event
 * loop is not the harness's): one job of 1,000 items (200 with --quick) at a limit of 50 calls/s.
 *   steady:  both replicas drain the job (three rounds); the rate used (the sliding-window ideal,
 *            (items - limit) / limit seconds since the first window's calls go at once, over
 *            the span from the first upstream call to the last; and over the whole drain, from
 *            submission to the last result), the busiest sliding second upstream, lost items,
 *            items called twice;
 *   killed:  the same with one replica SIGKILLed once half the items are done.
 * Run: npx tsx bench/jobs.ts [--quick] [--concurrency=N] (JOB_CONCURRENCY of each replica, default 32).
 * The replicas log warnings; with BENCH_LOG_DIR set, their logs are kept there (see processes.ts).
 * A harness around child processes, so plain async code.
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { busiestWindow, tightestSpan } from "../test/support/SlidingWindow.js"
import { query } from "../test/reliability/support.js"
import { API_KEY, serviceDatabase, startUpstream, type Upstream } from "./contenders.js"
import { type Child, freePort, projectRoot, start, stop, waitForPort } from "./processes.js"

const limit = 50
const windowMs = 1_000
const redisUrl = process.env["REDIS_TEST_URL"] ?? "redis://127.0.0.1:6379"
const concurrency = process.argv.find((a) => a.startsWith("--concurrency="))?.slice("--concurrency=".length) ?? "32"

export interface JobsScenario {
  readonly name: string
  readonly items: number
  /** From the job's creation to its last item's end. */
  readonly drainMs: number
  readonly idealMs: number
  /** From the first upstream call to the last, as upstream saw them. */
  readonly callSpanMs: number
  /** Ideal over the calls' span: the share of the allowed rate the job used. */
  readonly rateUsed: number
  /** Ideal over the drain: the same, charged with the submission and the last answer as well. */
  readonly drainRatio: number
  readonly busiestSecond: number
  /** The shortest span upstream holding one call more than the limit: above the window, the limit held, by this much. */
  readonly tightestSpanMs: number
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

const replica = async (name: string, upstream: Upstream, databaseUrl: string) => {
  const port = await freePort()
  const dataDir = mkdtempSync(Path.join(tmpdir(), `bench-jobs-${name}-`))
  const child = start(`replica-${name}`, ["dist/main.js"], {
    env: {
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      REDIS_URL: redisUrl,
      OPENROUTER_BASE_URL: upstream.baseUrl,
      OPENROUTER_API_KEY: API_KEY,
      OPENROUTER_APP_TITLE: `replica-${name}`,
      SUMMARY_CACHE_TTL_MS: "0",
      SUMMARY_FORMAT: "text",
      LLM_RATE_LIMIT_REQUESTS: String(limit),
      LLM_RATE_LIMIT_WINDOW_MS: String(windowMs),
      LLM_MAX_CONCURRENCY: "64",
      JOB_CONCURRENCY: concurrency,
      LOG_LEVEL: "warning",
      HOST: "127.0.0.1",
      PORT: String(port)
    }
  })
  await waitForPort(child, port)
  return { name, port, child, dataDir }
}

const scenario = async (name: string, items: number, kill: boolean): Promise<JobsScenario> => {
  const upstream = await startUpstream(50)
  const db = await serviceDatabase()
  const replicas: Array<{ name: string; port: number; child: Child; dataDir: string }> = []
  try {
    replicas.push(...await Promise.all(["a", "b"].map((n) => replica(n, upstream, db.url))))
    // One summary each, so both processes are warm before the clock starts.
    await Promise.all(replicas.map((r) => http(r.port, "POST", "/v1/summaries", itemOf(-1 - replicas.indexOf(r)))))
    await new Promise((resolve) => setTimeout(resolve, windowMs * 1.5))
    await upstream.reset()
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
    const calls = (await upstream.calls()).flatMap((c) => {
      const ref = /benchref\d+q/.exec(c.body)?.[0]
      return ref === undefined ? [] : [{ ...c, ref }]
    })
    const perRef = new Map<string, number>()
    for (const c of calls) perRef.set(c.ref, (perRef.get(c.ref) ?? 0) + 1)
    const drainMs = new Date(job.finishedAt).getTime() - new Date(job.createdAt).getTime()
    const idealMs = ((items - limit) / limit) * windowMs
    const arrivals = calls.map((c) => c.at)
    const callSpanMs = Math.max(...arrivals) - Math.min(...arrivals)
    const twice = [...perRef.entries()].filter(([, n]) => n > 1).map(([ref]) => ref)
    // Not expected without a kill: what the replicas said last is the evidence for whoever looks next.
    if (twice.length > 0 && !kill) {
      console.error(`[jobs] ${name}: ${twice.length} items called twice (${twice.slice(0, 5).join(", ")}, ...); the replicas' last lines:`)
      for (const r of replicas) console.error(`--- replica ${r.name}\n${r.child.tail()}`)
    }
    return {
      name,
      items,
      drainMs,
      idealMs,
      callSpanMs,
      rateUsed: idealMs / callSpanMs,
      drainRatio: idealMs / drainMs,
      busiestSecond: busiestWindow(arrivals, windowMs),
      tightestSpanMs: tightestSpan(arrivals, limit + 1),
      upstreamCalls: calls.length,
      lost: items - (job.counts.summarized + job.counts.fallback),
      calledTwice: twice.length,
      inFlightAtKill,
      perReplica: ["replica-a", "replica-b"].map((title) => calls.filter((c) => c.title === title).length)
    }
  } finally {
    await Promise.all(replicas.map((r) => stop(r.child)))
    for (const r of replicas) rmSync(r.dataDir, { recursive: true, force: true })
    await db.drop()
    await upstream.stop()
  }
}

export const run = async (quick: boolean): Promise<ReadonlyArray<JobsScenario>> => {
  execFileSync("npm", ["run", "-s", "build"], { cwd: projectRoot, stdio: "inherit" })
  const items = quick ? 200 : 1_000
  // Steady three times (once with --quick): the busiest second turns on a few milliseconds of arrival jitter.
  const results: Array<JobsScenario> = []
  for (let round = 1; round <= (quick ? 1 : 3); round++) results.push(await scenario(quick ? "steady" : `steady ${round}`, items, false))
  results.push(await scenario("killed", items, true))
  for (const r of results) console.log(JSON.stringify(r))
  return results
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run(process.argv.includes("--quick"))
  process.exit(0)
}
