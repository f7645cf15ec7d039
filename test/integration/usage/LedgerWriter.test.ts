import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Layer, Metric, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { insertStatements } from "../../../src/usage/LedgerWriter.js"
import { UsageRepo } from "../../../src/usage/UsageRepo.js"
import * as TestDatabase from "../../support/TestDatabase.js"
import { usageRepoWith } from "../../support/UsageRepoLayer.js"
import { usageRow } from "../../support/UsageRows.js"

const Db = TestDatabase.layerWith("ledger_writer")
const config = TestDatabase.configLayer({ DATA_DIR: mkdtempSync(Path.join(tmpdir(), "ledger-writer-")) })

const stored = (ids: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: string }>`SELECT count(*) AS n FROM llm_api_usage WHERE id IN ${sql.in(ids)}`).pipe(
    Effect.map(([row]) => Number(row!.n))
  )

describe("LedgerWriter (group commit)", () => {
  it.layer(Db)("on PostgreSQL", (it) => {
    it.effect("300 rows recorded at once: each caller resumes with its row committed, in far fewer INSERTs than rows", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        const before = (yield* Metric.value(insertStatements)).count
        const rows = Array.from({ length: 300 }, () => usageRow())
        const seen = yield* Effect.forEach(rows, (row) => Effect.zipRight(repo.record(row), stored([row.id])), { concurrency: "unbounded" })
        const statements = (yield* Metric.value(insertStatements)).count - before
        expect(seen.every((n) => n === 1)).toBe(true)
        expect(yield* stored(rows.map((r) => r.id))).toBe(300)
        expect(statements).toBeGreaterThan(0)
        expect(statements).toBeLessThan(60)
      }).pipe(Effect.provide(UsageRepo.layer.pipe(Layer.provide(config)))))

    it.effect("closing the ledger writes every row still gathering before it ends", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        // The writer's gathering runs on real time, so that its 200 ms window passes under the test clock.
        const repo = Context.get(yield* Layer.buildWithScope(usageRepoWith({ gather: "200 millis" }).pipe(Layer.provide(config)), scope).pipe(Effect.withClock(Clock.make())), UsageRepo)
        const rows = Array.from({ length: 50 }, () => usageRow())
        yield* Effect.forEach(rows, (row) => Effect.fork(repo.record(row)), { discard: true })
        yield* Effect.yieldNow()
        yield* Scope.close(scope, Exit.void)
        expect(yield* stored(rows.map((r) => r.id))).toBe(50)
      }))
  })
})
