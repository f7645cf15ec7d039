import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { JobStore } from "../../../src/jobs/JobStore.js"
import * as TestDatabase from "../../support/TestDatabase.js"

const jobFinished = (sql: SqlClient.SqlClient, id: string, finished: string | null, created = "0 days") =>
  sql`
    INSERT INTO summary_jobs (id, body_hash, item_count, created_at, finished_at)
    VALUES (${id}, ${"0".repeat(64)}, 1, now() - ${created}::interval,
            ${finished === null ? null : sql`now() - ${finished}::interval`})`

describe("summary job retention", () => {
  layer(JobStore.layer.pipe(Layer.provideMerge(TestDatabase.layerWith("jobs_retention"))))((it) => {
    it.effect("deletes jobs finished more than JOB_RETENTION_DAYS ago, with their items; keeps younger and unfinished ones", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* JobStore
        const old = crypto.randomUUID()
        const young = crypto.randomUUID()
        const running = crypto.randomUUID()
        yield* jobFinished(sql, old, "31 days", "32 days")
        yield* jobFinished(sql, young, "29 days", "29 days")
        yield* jobFinished(sql, running, null, "40 days")
        yield* sql`INSERT INTO summary_job_items (id, job_id, position, input) VALUES (${crypto.randomUUID()}, ${old}, 0, '{}'::jsonb)`

        expect(yield* store.deleteFinishedBefore(30)).toBe(1)
        const left = yield* sql<{ id: string }>`SELECT id::text FROM summary_jobs ORDER BY created_at`
        expect(new Set(left.map((r) => r.id))).toEqual(new Set([young, running]))
        const items = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM summary_job_items WHERE job_id = ${old}`
        expect(items[0]!.n).toBe(0)
      }))
  })
})
