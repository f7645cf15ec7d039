import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Context, Effect, Exit, Layer, Option, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import * as Money from "../../../src/domain/Money.js"
import { type UsagePage, UsageRepo } from "../../../src/usage/UsageRepo.js"
import * as TestDatabase from "../../support/TestDatabase.js"
import { usageRow } from "../../support/UsageRows.js"

const dataDir = mkdtempSync(Path.join(tmpdir(), "usage-repo-"))
const Repo = UsageRepo.layer.pipe(
  Layer.provideMerge(TestDatabase.layerWith("usage_repo")),
  Layer.provide(TestDatabase.configLayer({ DATA_DIR: dataDir }))
)

const d = BigDecimal.unsafeFromString
const at = (iso: string) => new Date(iso)

describe("UsageRepo", () => {
  it.layer(Repo)("ledger on PostgreSQL", (it) => {
    it.effect("records every attempt, and totals count calls, failures, unknown costs, tokens and exact cost per day", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        yield* Effect.all([
          repo.record(usageRow({ createdAt: at("2025-03-01T00:00:00.000Z"), costUsd: Option.some(d("0.00002415")) })),
          repo.record(usageRow({ createdAt: at("2025-03-01T23:59:59.999Z"), costUsd: Option.some(d("0.1")), model: "openai/gpt-4o" })),
          repo.record(usageRow({
            createdAt: at("2025-03-02T10:00:00.000Z"),
            status: "error",
            errorCode: "502",
            promptTokens: 0,
            completionTokens: 0,
            totalTokens: 0,
            costUsd: Option.none(),
            costSource: "unknown",
            attempt: 2
          })),
          repo.record(usageRow({ createdAt: at("2025-02-28T23:59:59.999Z") })),
          repo.record(usageRow({ createdAt: at("2025-04-01T00:00:00.000Z") }))
        ], { concurrency: "unbounded" })

        const byDay = yield* repo.totals("2025-03-01", "2025-03-31", "day")
        expect(byDay.groups.map((g) => [g.key, g.calls, g.failedCalls, g.unknownCostCalls, Money.format(g.costUsd)])).toEqual([
          ["2025-03-01", 2, 0, 0, "0.10002415"],
          ["2025-03-02", 1, 1, 1, "0"]
        ])
        expect(byDay.total).toMatchObject({ calls: 3, failedCalls: 1, unknownCostCalls: 1, promptTokens: 58, completionTokens: 66, totalTokens: 124 })
        expect(Money.format(byDay.total.costUsd)).toBe("0.10002415")

        const byModel = yield* repo.totals("2025-02-01", "2025-04-30", "model")
        expect(byModel.groups.map((g) => [g.key, g.calls])).toEqual([["openai/gpt-4o", 1], ["openai/gpt-4o-mini", 4]])
        const byMonth = yield* repo.totals("2025-02-01", "2025-04-30", "month")
        expect(byMonth.groups.map((g) => [g.key, g.calls])).toEqual([["2025-02", 1], ["2025-03", 3], ["2025-04", 1]])
      }))

    it.effect("an unknown cost stays NULL in the ledger, never 0", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        const sql = yield* SqlClient.SqlClient
        const row = usageRow({ costUsd: Option.none(), costSource: "unknown", createdAt: at("2024-01-05T12:00:00Z") })
        yield* repo.record(row)
        const stored = yield* sql<{ cost_usd: string | null; cost_source: string }>`
          SELECT cost_usd, cost_source FROM llm_api_usage WHERE id = ${row.id}`
        expect(stored).toEqual([{ cost_usd: null, cost_source: "unknown" }])
        const totals = yield* repo.totals("2024-01-05", "2024-01-05", "day")
        expect(totals.total.unknownCostCalls).toBe(1)
        expect(Money.format(totals.total.costUsd)).toBe("0")
      }))

    it.effect("spend is this UTC day and this UTC month", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        yield* Effect.all([
          repo.record(usageRow({ createdAt: at("2023-06-15T00:00:01Z"), costUsd: Option.some(d("1.5")) })),
          repo.record(usageRow({ createdAt: at("2023-06-14T23:59:59Z"), costUsd: Option.some(d("0.25")) })),
          repo.record(usageRow({ createdAt: at("2023-05-31T23:59:59Z"), costUsd: Option.some(d("100")) })),
          repo.record(usageRow({ createdAt: at("2023-06-16T00:00:00Z"), costUsd: Option.some(d("7")) }))
        ], { concurrency: "unbounded" })
        const spend = yield* repo.spend(at("2023-06-15T23:00:00Z"))
        expect([Money.format(spend.todayUsd), Money.format(spend.monthUsd)]).toEqual(["1.5", "1.75"])
      }))

    it.effect("recent pages newest first through an opaque cursor, without gaps or repeats", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        const sql = yield* SqlClient.SqlClient
        yield* sql`TRUNCATE llm_api_usage`
        const rows = Array.from({ length: 7 }, (_, i) =>
          usageRow({ createdAt: at(`2030-01-01T00:00:0${i % 3}.000Z`), purpose: `p${i}` }))
        yield* Effect.forEach(rows, repo.record, { concurrency: "unbounded" })
        const seen: Array<string> = []
        let cursor: string | null = null
        let pages = 0
        do {
          const page: UsagePage = yield* repo.recent(3, cursor)
          seen.push(...page.rows.map((r) => r.id))
          cursor = page.nextCursor
          pages++
        } while (cursor !== null)
        expect(pages).toBe(3)
        const expected = [...rows].sort((a, b) =>
          b.createdAt.getTime() - a.createdAt.getTime() || (b.id < a.id ? -1 : b.id > a.id ? 1 : 0))
        expect(seen).toEqual(expected.map((r) => r.id))
        const first = yield* repo.recent(1, null)
        expect(first.rows[0]).toMatchObject({ id: expected[0]!.id, model: "openai/gpt-4o-mini", costSource: "provider", status: "success" })
        expect(Option.map(first.rows[0]!.costUsd, Money.format)).toEqual(Option.some("0.00002415"))
        expect((yield* Effect.flip(repo.recent(3, "not-a-cursor")))._tag).toBe("UsageQueryError")
      }))

    it.effect("stores text exactly, whatever quotes, braces, commas or backslashes it holds", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        const sql = yield* SqlClient.SqlClient
        const odd = `a "quoted", {braced} \\ back\\slash NULL ' é`
        const row = usageRow({ purpose: odd, errorCode: "NULL", provider: null, requestId: "{}" })
        yield* Effect.all([repo.record(row), repo.record(usageRow())], { concurrency: "unbounded" })
        const [stored] = yield* sql<{ purpose: string; error_code: string; provider: string | null; request_id: string }>`
          SELECT purpose, error_code, provider, request_id FROM llm_api_usage WHERE id = ${row.id}`
        expect(stored).toEqual({ purpose: odd, error_code: "NULL", provider: null, request_id: "{}" })
      }))

    it.effect("32 concurrent records share a few multi-row INSERTs, and every row is there", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        const sql = yield* SqlClient.SqlClient
        const day = "2031-02-03"
        yield* Effect.forEach(
          Array.from({ length: 32 }, () => usageRow({ createdAt: at(`${day}T10:00:00Z`) })),
          repo.record,
          { concurrency: "unbounded" }
        )
        // Each INSERT outside a transaction is its own transaction: distinct xmin = statements that wrote rows.
        const [row] = yield* sql<{ rows: string; statements: string }>`
          SELECT count(*) AS rows, count(DISTINCT xmin::text) AS statements
          FROM llm_api_usage WHERE created_at::date = ${day}::date`
        expect(Number(row!.rows)).toBe(32)
        expect(Number(row!.statements)).toBeLessThan(8)
      }))

    it.effect("closing the service (graceful shutdown) first writes every row still waiting in the queue", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          UsageRepo.layer.pipe(Layer.provide(TestDatabase.configLayer({ DATA_DIR: mkdtempSync(Path.join(tmpdir(), "drain-")) }))),
          scope
        )
        const repo = Context.get(context, UsageRepo)
        const day = "2032-07-07"
        yield* Effect.forEach(
          Array.from({ length: 50 }, () => usageRow({ createdAt: at(`${day}T01:00:00Z`) })),
          (row) => Effect.forkDaemon(repo.record(row))
        )
        yield* Effect.yieldNow()
        yield* Scope.close(scope, Exit.void)
        const [row] = yield* sql<{ n: string }>`SELECT count(*) AS n FROM llm_api_usage WHERE created_at::date = ${day}::date`
        expect(Number(row!.n)).toBe(50)
      }))
  })
})
