/**
 * `npx tsx bench/hugeAnswer.ts [--mb=400]` (needs DATABASE_URL, as the tests do)
 *
 * Issue 10 §5's reproduction: the service (its own process, as `npm start` runs it) asks an
 * upstream that answers 200 with a `content` of N MB, streamed by the emulator without being held
 * whole. Prints the service's RSS before and its peak (VmHWM) after, the slowest `GET /health`
 * meanwhile, the answer and the ledger row. Run it on a checkout before the fix to compare.
 */
import { Effect, Fiber, Redacted } from "effect"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import pg from "pg"
import { request, postJson } from "../test/reliability/Client.js"
import { freshChange, serviceEnv } from "../test/reliability/support.js"
import { makeEmulator } from "../test/support/OpenRouterEmulator.js"
import { startService } from "../test/support/ServiceProcess.js"
import { createDatabase } from "../test/support/TestDatabase.js"

const mb = Number(process.argv.find((a) => a.startsWith("--mb="))?.slice(5) ?? 400)
const statusKb = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1])

const main = Effect.gen(function*() {
  const emulator = yield* makeEmulator()
  const db = yield* createDatabase("bench_huge")
  const url = Redacted.value(db.url)
  const service = yield* startService(
    serviceEnv(emulator, url, mkdtempSync(Path.join(tmpdir(), "bench-huge-")), { LOG_LEVEL: "error", OPENROUTER_TIMEOUT_MS: "120000" }),
    { readyTimeout: "120 seconds" }
  )
  yield* Effect.forEach(Array.from({ length: 5 }), () => postJson(service.port, "/v1/summaries", freshChange()), { discard: true })
  const baselineKb = statusKb(service.pid, "VmRSS")
  emulator.always({ kind: "huge_content", bytes: mb * 1_048_576 })

  let running = true
  let slowestHealthMs = 0
  const probe = yield* Effect.fork(Effect.whileLoop({
    while: () => running,
    body: () =>
      Effect.gen(function*() {
        const started = performance.now()
        yield* Effect.either(request(service.port, { path: "/health", timeoutMs: 300_000 }))
        slowestHealthMs = Math.max(slowestHealthMs, performance.now() - started)
        yield* Effect.sleep("100 millis")
      }),
    step: () => undefined
  }))
  const started = performance.now()
  const reply = yield* Effect.either(postJson(service.port, "/v1/summaries", freshChange(), {}, 600_000))
  const answerMs = performance.now() - started
  running = false
  yield* Fiber.join(probe)
  const peakKb = statusKb(service.pid, "VmHWM")

  const client = new pg.Client({ connectionString: url })
  yield* Effect.promise(() => client.connect())
  const rows = yield* Effect.promise(() => client.query("SELECT status, error_code, count(*)::int AS n FROM llm_api_usage GROUP BY 1, 2 ORDER BY 1, 2"))
  yield* Effect.promise(() => client.end())
  const body = reply._tag === "Right" ? JSON.parse(reply.right.body) : { error: reply.left.code }
  console.log(JSON.stringify({
    contentMb: mb,
    answer: { status: body.status, fallbackReason: body.fallbackReason ?? null, fallbackDetail: body.fallbackDetail ?? null, attempts: body.attempts },
    answerMs: Math.round(answerMs),
    rssBaselineMb: Math.round(baselineKb / 1024),
    rssPeakMb: Math.round(peakKb / 1024),
    slowestHealthMs: Math.round(slowestHealthMs),
    upstreamCalls: emulator.completionCount(),
    ledger: rows.rows.map((r) => `${r.status}/${r.error_code ?? "-"}=${r.n}`)
  }))
})

Effect.runPromise(Effect.scoped(main)).catch((error) => {
  console.error(error)
  process.exit(1)
})
