/**
 * Ledger benchmarks on the real PostgreSQL (`DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/postgres),
 * each in a database of its own, dropped afterwards:
 *   1. `record` throughput and latency at 32 concurrent callers: group commit versus one INSERT per row;
 *   2. `totals` for one month over 1M and 10M rows generated with SQL (100k in quick mode), read from
 *      the daily rollup, beside the same aggregate computed from the base table.
 * Run: npx tsx bench/ledger.ts [--quick]
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import * as Migrations from "../src/db/Migrations.js"
import { toColumns } from "../src/usage/LedgerRow.js"
import { UsageRepo } from "../src/usage/UsageRepo.js"
import { usageRow } from "../test/support/UsageRows.js"
import { configLayer, createDatabase, serverUrl } from "../test/support/TestDatabase.js"
import { percentile } from "./loadgen.js"

const callers = 32

/** A migrated database of its own for the duration of the scope (created and dropped like the tests'). */
const benchDatabase = (label: string) =>
  Effect.gen(function*() {
    const db = yield* Effect.orDie(createDatabase(`bench_${label}`))
    const client = PgClient.layer({ url: db.url, maxConnections: 10 })
    return yield* Layer.build(Layer.provideMerge(Migrations.layer, client))
  })

interface WriteResult {
  readonly mode: string
  readonly rows: number
  readonly rowsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly statements: number
}

/** `callers` fibers each recording rows back to back for `seconds`. */
const measureWrites = (mode: string, seconds: number, record: (i: number) => Effect.Effect<void, unknown>) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    const deadline = performance.now() + seconds * 1000
    const started = performance.now()
    yield* Effect.forEach(Array.from({ length: callers }, (_, i) => i), (i) =>
      Effect.gen(function*() {
        while (performance.now() < deadline) {
          const t = performance.now()
          yield* record(i)
          latencies.push(performance.now() - t)
        }
      }), { concurrency: "unbounded", discard: true })
    const elapsed = (performance.now() - started) / 1000
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ statements: string }>`SELECT count(DISTINCT xmin::text) AS statements FROM llm_api_usage`
    latencies.sort((a, b) => a - b)
    return {
      mode,
      rows: latencies.length,
      rowsPerSecond: Math.round(latencies.length / elapsed),
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      statements: Number(row!.statements)
    } satisfies WriteResult
  })

const groupCommit = (seconds: number) =>
  Effect.gen(function*() {
    const db = yield* benchDatabase("group")
    const dataDir = mkdtempSync(Path.join(tmpdir(), "bench-ledger-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dataDir, { recursive: true, force: true })))
    const repoContext = yield* Layer.build(
      UsageRepo.layer.pipe(Layer.provide(Layer.succeedContext(db)), Layer.provide(configLayer({ DATA_DIR: dataDir })))
    )
    const repo = Context.get(repoContext, UsageRepo)
    return yield* measureWrites("group commit", seconds, () => repo.record(usageRow())).pipe(Effect.provide(db))
  }).pipe(Effect.scoped)

const insertPerRow = (seconds: number) =>
  Effect.gen(function*() {
    const db = yield* benchDatabase("single")
    const sql = Context.get(db, SqlClient.SqlClient)
    return yield* measureWrites("one INSERT per row", seconds, () =>
      sql`INSERT INTO llm_api_usage ${sql.insert(toColumns(usageRow()))}`).pipe(Effect.provide(db))
  }).pipe(Effect.scoped)

/** Rows spread evenly over 12 months of 2024 and 6 models, a tenth failed, a twentieth of unknown cost. */
const generate = (rows: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const chunk = 1_000_000
    for (let start = 0; start < rows; start += chunk) {
      const end = Math.min(rows, start + chunk) - 1
      yield* sql`
        INSERT INTO llm_api_usage (id, model, provider, prompt_tokens, completion_tokens, total_tokens, cost_usd,
                                   cost_source, request_id, created_at, status, error_code, attempt, latency_ms, purpose)
        SELECT gen_random_uuid(),
               (ARRAY['openai/gpt-4o-mini','openai/gpt-4o','anthropic/claude-3.5-sonnet','anthropic/claude-3-opus',
                      'meta-llama/llama-3.1-8b-instruct','mistralai/mistral-small'])[1 + i % 6],
               'Bench', 500 + i % 1000, 100 + i % 300, 600 + i % 1000 + i % 300,
               CASE WHEN i % 20 = 0 THEN NULL ELSE (i % 997 + 1) * 0.00000015 END,
               CASE WHEN i % 20 = 0 THEN 'unknown' ELSE 'provider' END,
               'gen-' || i,
               timestamptz '2024-01-01 00:00:00+00' + (i::double precision / ${rows}) * interval '366 days',
               CASE WHEN i % 10 = 0 THEN 'error' ELSE 'success' END,
               CASE WHEN i % 10 = 0 THEN '502' END,
               1 + i % 3, 100 + i % 900, 'summary'
        FROM generate_series(${start}::bigint, ${end}::bigint) AS i`
    }
    yield* sql`ANALYZE llm_api_usage`
    yield* sql`ANALYZE llm_api_usage_daily`
  })

const median = (f: Effect.Effect<unknown, unknown, never>, runs: number) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    for (let i = 0; i < runs; i++) {
      const t = performance.now()
      yield* f
      times.push(performance.now() - t)
    }
    times.sort((a, b) => a - b)
    return times[Math.floor(runs / 2)]!
  })

interface TotalsResult {
  readonly rows: number
  readonly generateSeconds: number
  readonly rollupMs: number
  readonly baseTableMs: number
  readonly monthRows: number
}

const totalsOver = (rows: number) =>
  Effect.gen(function*() {
    const db = yield* benchDatabase(`totals_${rows}`)
    const dataDir = mkdtempSync(Path.join(tmpdir(), "bench-ledger-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dataDir, { recursive: true, force: true })))
    const t = performance.now()
    yield* Effect.provide(generate(rows), db)
    const generateSeconds = (performance.now() - t) / 1000
    const repoContext = yield* Layer.build(
      UsageRepo.layer.pipe(Layer.provide(Layer.succeedContext(db)), Layer.provide(configLayer({ DATA_DIR: dataDir })))
    )
    const repo = Context.get(repoContext, UsageRepo)
    const sql = Context.get(db, SqlClient.SqlClient)
    const month = repo.totals("2024-06-01", "2024-06-30", "day")
    const check = yield* month
    const baseTable = sql`
      SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*), count(*) FILTER (WHERE status = 'error'),
             count(*) FILTER (WHERE cost_usd IS NULL), sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost_usd)
      FROM llm_api_usage
      WHERE created_at >= '2024-06-01T00:00:00Z' AND created_at < '2024-07-01T00:00:00Z'
      GROUP BY 1`
    return {
      rows,
      generateSeconds,
      rollupMs: yield* median(month, 9),
      baseTableMs: yield* median(baseTable, 3),
      monthRows: check.total.calls
    } satisfies TotalsResult
  }).pipe(Effect.scoped)

const fixed = (n: number, digits = 1) => n.toFixed(digits)

export const run = (quick: boolean) =>
  Effect.gen(function*() {
    const seconds = quick ? 2 : 5
    const writes = [yield* insertPerRow(seconds), yield* groupCommit(seconds)]
    console.log(`\nLedger writes, ${callers} concurrent callers, ${seconds} s each, PostgreSQL at ${new URL(serverUrl).host}`)
    console.table(writes.map((w) => ({
      mode: w.mode,
      "rows/s": w.rowsPerSecond,
      "p50 ms": fixed(w.p50Ms, 2),
      "p99 ms": fixed(w.p99Ms, 2),
      rows: w.rows,
      "INSERT statements": w.statements
    })))
    const sizes = quick ? [100_000] : [1_000_000, 10_000_000]
    const totals: Array<TotalsResult> = []
    for (const size of sizes) totals.push(yield* totalsOver(size))
    console.log("\ntotals() for one month (June 2024) grouped by day; rows spread over 2024")
    console.table(totals.map((r) => ({
      "ledger rows": r.rows.toLocaleString("en"),
      "rows in the month": r.monthRows.toLocaleString("en"),
      "generate s": fixed(r.generateSeconds),
      "totals (rollup) ms": fixed(r.rollupMs, 2),
      "same from base table ms": fixed(r.baseTableMs, 1)
    })))
    return { writes, totals }
  }).pipe(
    Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  Effect.runPromise(run(process.argv.includes("--quick"))).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}
