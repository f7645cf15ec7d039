import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Redacted, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { UsageRepo } from "../../../src/usage/UsageRepo.js"
import { usageRepoWith } from "../../support/UsageRepoLayer.js"
import { makeTcpProxy } from "../../support/TcpProxy.js"
import * as TestDatabase from "../../support/TestDatabase.js"
import { usageRow } from "../../support/UsageRows.js"

const Db = TestDatabase.layerWith("ledger_outage")

const rowCount = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ rows: string; rolled: string | null }>`
    SELECT (SELECT count(*) FROM llm_api_usage) AS rows, (SELECT sum(calls) FROM llm_api_usage_daily) AS rolled`
  return { rows: Number(row!.rows), rolled: Number(row!.rolled ?? 0) }
})

/** The same database reached through the proxy. */
const throughProxy = (db: Context.Tag.Service<TestDatabase.TestDatabase>, port: number) => {
  const url = new URL(Redacted.value(db.url))
  url.host = `127.0.0.1:${port}`
  return url.toString()
}

const waitFor = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => new Error(`still waiting for ${what}`)),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds")))
  )

describe("losing nothing", () => {
  layer(Db, { excludeTestServices: true })("with the line to PostgreSQL cut", (it) => {
    it.scoped("a burst cut halfway: every caller resumes, the rows wait in the spool, and the count is exact once the line is back", () =>
      Effect.gen(function*() {
        const db = yield* TestDatabase.TestDatabase
        const proxy = yield* makeTcpProxy({ host: db.host, port: db.port })
        const dataDir = mkdtempSync(Path.join(tmpdir(), "outage-"))
        const context = yield* Layer.build(
          usageRepoWith({ replayEvery: "200 millis", insertTimeout: "2 seconds" }).pipe(
            Layer.provide(PgClient.layer({ url: Redacted.make(throughProxy(db, proxy.port)), connectTimeout: "2 seconds" })),
            Layer.provide(TestDatabase.configLayer({ DATA_DIR: dataDir }))
          )
        )
        const repo = Context.get(context, UsageRepo)
        const total = 400
        const burst = yield* Effect.fork(Effect.forEach(
          Array.from({ length: total }, () => usageRow()),
          (row) => repo.record(row).pipe(Effect.delay("1 millis")),
          { concurrency: 32 }
        ))
        yield* waitFor(Effect.map(rowCount, (c) => c.rows >= 50), "the first rows")
        proxy.cut()
        yield* Fiber.join(burst).pipe(Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => new Error("callers stuck while cut") }))

        const cut = yield* rowCount
        const depth = yield* repo.spoolDepth
        expect(cut.rows).toBeLessThan(total)
        expect(depth).toBeGreaterThan(0)
        expect(readdirSync(Path.join(dataDir, "spool")).length).toBeGreaterThan(0)

        proxy.restore()
        yield* waitFor(Effect.map(repo.spoolDepth, (n) => n === 0), "the spool to drain")
        expect(yield* rowCount).toEqual({ rows: total, rolled: total })
      }))

    it.scoped("a process killed with SIGKILL while the database is cut replays its spool when restarted: the count is exact", () =>
      Effect.gen(function*() {
        const db = yield* TestDatabase.TestDatabase
        const sql = yield* SqlClient.SqlClient
        yield* sql`TRUNCATE llm_api_usage, llm_api_usage_daily`
        const proxy = yield* makeTcpProxy({ host: db.host, port: db.port })
        const dataDir = mkdtempSync(Path.join(tmpdir(), "crash-"))

        const first = yield* startChild({ DATABASE_URL: throughProxy(db, proxy.port), DATA_DIR: dataDir })
        yield* first.next(/^ready/)
        proxy.cut()
        first.send("record 150")
        const recorded = yield* first.next(/^recorded 150 depth (\d+)/)
        expect(Number(recorded[1])).toBe(150)
        first.kill()
        expect((yield* rowCount).rows).toBe(0)

        proxy.restore()
        const second = yield* startChild({ DATABASE_URL: Redacted.value(db.url), DATA_DIR: dataDir })
        const ready = yield* second.next(/^ready (\d+)/)
        expect(Number(ready[1])).toBe(150)
        yield* waitFor(Effect.map(rowCount, (c) => c.rows === 150), "the replay")
        second.kill()
        expect(yield* rowCount).toEqual({ rows: 150, rolled: 150 })
      }))
  })
})

/** The ledger in a child process (test/support/ledgerChild.ts), killed with SIGKILL at the end of the scope. */
const startChild = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "test/support/ledgerChild.ts"], {
        env: { ...process.env, LOG_LEVEL: "warning", ...env },
        stdio: ["pipe", "pipe", "inherit"]
      })
      const lines: Array<string> = []
      const waiters = new Set<() => void>()
      let buffer = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        buffer += chunk.toString()
        const parts = buffer.split("\n")
        buffer = parts.pop()!
        lines.push(...parts)
        for (const w of waiters) w()
      })
      let seen = 0
      const next = (pattern: RegExp) =>
        Effect.async<RegExpExecArray, Error>((resume) => {
          const check = () => {
            while (seen < lines.length) {
              const match = pattern.exec(lines[seen++]!)
              if (match) {
                waiters.delete(check)
                return resume(Effect.succeed(match))
              }
            }
          }
          waiters.add(check)
          check()
          return Effect.sync(() => waiters.delete(check))
        }).pipe(Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`child never printed ${pattern}`) }))
      return {
        child,
        next,
        send: (line: string) => void child.stdin!.write(`${line}\n`),
        kill: () => void child.kill("SIGKILL")
      }
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )
