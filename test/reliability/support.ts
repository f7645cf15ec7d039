import { Data, type Duration, Effect, Redacted, Schedule } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import pg from "pg"
import type { Emulator } from "../support/OpenRouterEmulator.js"
import { TEST_API_KEY } from "../support/TestApp.js"
import { createDatabase } from "../support/TestDatabase.js"
import { NoReply, request } from "./Client.js"

/** CI's short form (`RELIABILITY_QUICK=1`): the same checks with smaller counts and shorter cuts. */
export const QUICK = process.env["RELIABILITY_QUICK"] === "1"

export const sized = <A>(quick: A, full: A): A => (QUICK ? quick : full)

/** What a check held, as counts; the note quotes these lines. */
export const report = (line: string) => Effect.sync(() => console.log(`[reliability]${QUICK ? " (quick)" : ""} ${line}`))

export class CheckFailed extends Data.TaggedError("CheckFailed")<{ readonly message: string }> {}

let changes = 0

/** A real wording change no other request of this run has, so no cache can answer it; `ref` names it in the prompt upstream sees. */
export const freshChange = () => {
  const ref = `ref${changes++}q`
  return {
    before: `# Privacy policy\n\nAccount ${ref}: we keep your account data for 30 days.\nWe never sell your data.\n`,
    after: `# Privacy policy\n\nAccount ${ref}: we keep your account data for 90 days and share it with partners.\nWe never sell your data.\n`
  }
}

/** The `ref` of every change the emulator was asked about (arrived before `beforeMs`, if given). */
export const refsUpstream = (emulator: Emulator, beforeMs = Infinity): ReadonlySet<string> => {
  const refs = new Set<string>()
  for (const call of emulator.calls) {
    if (call.at >= beforeMs) continue
    for (const match of JSON.stringify(call.body ?? "").matchAll(/ref\d+q/g)) refs.add(match[0])
  }
  return refs
}

export const refOf = (change: { readonly after: string }): string => /ref\d+q/.exec(change.after)![0]

/** `{"a": 2, "b": 1}` -> `a=2 b=1`, largest first. */
export const tally = (values: ReadonlyArray<string>): string => {
  const counts = new Map<string, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}=${n}`).join(" ")
}

export const count = <A>(values: ReadonlyArray<A>, predicate: (a: A) => boolean) => values.filter(predicate).length

/** A temporary directory for the service's DATA_DIR (spool, price cache), removed with the scope. */
export const tempDir = (label: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(Path.join(tmpdir(), `reliability-${label}-`))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** A fresh database on the real server, as a plain URL plus its address (for a proxy in front). */
export const freshDatabase = (label: string) =>
  Effect.map(createDatabase(label), (db) => ({ url: Redacted.value(db.url), host: db.host, port: db.port }))

/** The same database reached through a proxy listening on `port`. */
export const viaPort = (url: string, port: number) => {
  const parsed = new URL(url)
  parsed.host = `127.0.0.1:${port}`
  return parsed.toString()
}

/** One statement on its own connection to the database at `url`. */
export const query = <A>(url: string, text: string) =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        return (await client.query(text)).rows as Array<A>
      } finally {
        await client.end()
      }
    },
    catch: (cause) => new CheckFailed({ message: `query failed: ${text}: ${String(cause)}` })
  })

/** Ledger rows, read directly (never through the proxy a test cuts). */
export const ledgerRows = (url: string) =>
  Effect.map(query<{ n: number }>(url, "SELECT count(*)::int AS n FROM llm_api_usage"), (rows) => rows[0]!.n)

export const ledgerRowsBy = (url: string, column: "status" | "error_code" | "cost_source") =>
  query<{ k: string | null; n: number }>(url, `SELECT ${column} AS k, count(*)::int AS n FROM llm_api_usage GROUP BY 1 ORDER BY 2 DESC`).pipe(
    Effect.map((rows) => rows.map((r) => `${r.k ?? "null"}=${r.n}`).join(" "))
  )

/** Environment for a service against the emulator: no throttling, no cache, short retries. */
export const serviceEnv = (
  emulator: Emulator,
  databaseUrl: string,
  dataDir: string,
  extra: Readonly<Record<string, string>> = {}
): Record<string, string> => ({
  DATABASE_URL: databaseUrl,
  DATA_DIR: dataDir,
  OPENROUTER_BASE_URL: emulator.baseUrl,
  OPENROUTER_API_KEY: TEST_API_KEY,
  OPENROUTER_TIMEOUT_MS: "2000",
  LLM_RETRY_BASE_MS: "5",
  LLM_RATE_LIMIT_REQUESTS: "1000000",
  LLM_RATE_LIMIT_WINDOW_MS: "1000",
  LLM_MAX_CONCURRENCY: "64",
  SUMMARY_CACHE_TTL_MS: "0",
  LOG_LEVEL: "info",
  ...extra
})

export interface Readiness {
  readonly status: number
  readonly spoolDepth: number | null
  readonly databaseOk: boolean
  readonly rateLimiterMode: string | null
}

/** `GET /health/ready`: its status and spool depth (a 503 carries the same report). */
export const readiness = (port: number) =>
  request(port, { path: "/health/ready", timeoutMs: 10_000 }).pipe(
    Effect.map((reply): Readiness => {
      const body = JSON.parse(reply.body)
      const report = body.readiness ?? body
      return {
        status: reply.status,
        spoolDepth: report.spoolDepth ?? null,
        databaseOk: report.database?.ok === true,
        rateLimiterMode: report.rateLimiter?.mode ?? null
      }
    })
  )

/** Polls `check` until it holds, every `every`, for at most `within`. */
export const eventually = <E>(
  what: string,
  check: Effect.Effect<boolean, E>,
  within: Duration.DurationInput = "60 seconds",
  every: Duration.DurationInput = "200 millis"
) =>
  check.pipe(
    Effect.catchAll(() => Effect.succeed(false)),
    Effect.filterOrFail((ok) => ok, () => new CheckFailed({ message: `timed out waiting for ${what}` })),
    Effect.retry(Schedule.spaced(every).pipe(Schedule.upTo(within)))
  )

/** The outcome of one summary request, as a label: `200 summarized`, `200 fallback:rate_limited`, `503`, `ECONNREFUSED`. */
export const outcomeOf = (result: { readonly status: number; readonly body: string } | NoReply): string => {
  if (result instanceof NoReply) return result.code
  if (result.status !== 200) return String(result.status)
  const body = JSON.parse(result.body)
  return body.status === "fallback" ? `200 fallback:${body.fallbackReason}` : `200 ${body.status}`
}


/** The shortest time spanned by `n` consecutive timestamps: more than `n - 1` calls never fit in less. */
export const tightestSpan = (timestamps: ReadonlyArray<number>, n: number): number => {
  const sorted = [...timestamps].sort((a, b) => a - b)
  let best = Infinity
  for (let i = 0; i + n - 1 < sorted.length; i++) best = Math.min(best, sorted[i + n - 1]! - sorted[i]!)
  return best
}
