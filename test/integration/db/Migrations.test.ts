import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import * as Database from "../../../src/db/Database.js"
import * as Migrations from "../../../src/db/Migrations.js"
import * as Money from "../../../src/domain/Money.js"
import { UsageRepo } from "../../../src/usage/UsageRepo.js"
import { configLayer, createDatabase } from "../../support/TestDatabase.js"
import { usageRow } from "../../support/UsageRows.js"

const tables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`
  return rows.map((r) => r.table_name)
})

const migrationCount = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ n: string }>`SELECT count(*) AS n FROM effect_sql_migrations`
  return Number(rows[0]!.n)
})

describe("migrations", () => {
  it.scoped("two processes migrating an empty database at once both start, and re-running is a no-op", () =>
    Effect.gen(function*() {
      const db = yield* createDatabase("migrations")
      const client = () => PgClient.layer({ url: db.url, maxConnections: 2 })
      const migrateWith = (layer: Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, unknown>) =>
        Migrations.run.pipe(Effect.provide(layer))
      yield* Effect.all([migrateWith(client()), migrateWith(client()), migrateWith(client())], { concurrency: "unbounded" })
      yield* migrateWith(client())
      const [names, count] = yield* Effect.all([tables, migrationCount]).pipe(Effect.provide(client()))
      expect(names).toEqual(expect.arrayContaining(["llm_api_usage", "llm_api_usage_daily", "cost_alerts", "summary_cache", "summary_jobs", "summary_job_items"]))
      expect(count).toBe(5)
    }))

  it.scoped("the ledger refuses a zero standing in for an unknown cost, and a status outside success/error", () =>
    Effect.gen(function*() {
      const db = yield* createDatabase("constraints")
      const layer = Layer.provideMerge(Migrations.layer, PgClient.layer({ url: db.url }))
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const insert = (cost: string | null, source: string, status = "success") =>
          sql`INSERT INTO llm_api_usage (id, model, cost_usd, cost_source, status)
              VALUES (gen_random_uuid(), 'm', ${cost}, ${source}, ${status})`.pipe(Effect.either)
        expect((yield* insert("0", "unknown"))._tag).toBe("Left")
        expect((yield* insert(null, "provider"))._tag).toBe("Left")
        expect((yield* insert("0.1", "provider", "weird"))._tag).toBe("Left")
        expect((yield* insert(null, "unknown"))._tag).toBe("Right")
        expect((yield* insert("0.00002415", "pricing", "error"))._tag).toBe("Right")
      }).pipe(Effect.provide(layer))
    }))
})

describe("embedded database", () => {
  it.scoped("without DATABASE_URL the ledger runs on PGlite under DATA_DIR, and its rows survive a restart", () =>
    Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "embedded-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      const layer = UsageRepo.layer.pipe(
        Layer.provideMerge(Database.layer),
        Layer.provide(configLayer({ DATA_DIR: dataDir }))
      )
      const day = "2025-05-05"
      yield* Effect.gen(function*() {
        const repo = yield* UsageRepo
        yield* Effect.forEach(
          Array.from({ length: 20 }, () => usageRow({ createdAt: new Date(`${day}T12:00:00Z`) })),
          repo.record,
          { concurrency: "unbounded" }
        )
        yield* repo.record(usageRow({ createdAt: new Date(`${day}T13:00:00Z`), costUsd: Option.none(), costSource: "unknown" }))
      }).pipe(Effect.provide(layer), Effect.scoped)
      const totals = yield* Effect.flatMap(UsageRepo, (repo) => repo.totals(day, day, "day")).pipe(
        Effect.provide(layer),
        Effect.scoped
      )
      expect(totals.total).toMatchObject({ calls: 21, unknownCostCalls: 1 })
      expect(Money.format(totals.total.costUsd)).toBe("0.000483")
      expect(existsSync(Path.join(dataDir, "pglite"))).toBe(true)
    }))
})
