import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Effect, Layer, Queue, Redacted } from "effect"
import { JobQueue } from "../../../src/jobs/JobQueue.js"
import { configLayer, createDatabase, embeddedOnly } from "../../support/TestDatabase.js"

const replicaOn = (url: Redacted.Redacted<string>) =>
  Layer.provideMerge(JobQueue.layer, Layer.mergeAll(PgClient.layer({ url, maxConnections: 4 }), configLayer({ DATABASE_URL: Redacted.value(url) })))

describe("the job queue engine", () => {
  it.scopedLive("replicas starting at once on an empty database all start the queue (pg-boss installs its schema once)", () =>
    Effect.gen(function*() {
      const db = yield* createDatabase("jobs-queue")
      const started = yield* Effect.all(
        Array.from({ length: 4 }, () => Effect.scoped(Effect.as(Layer.build(replicaOn(db.url)), "started"))),
        { concurrency: "unbounded" }
      )
      expect(started).toEqual(["started", "started", "started", "started"])
    }), { timeout: 60_000 })

  // The embedded database serves one process's session: LISTEN/NOTIFY is for replicas on a PostgreSQL server.
  describe.skipIf(embeddedOnly)(`replicas on one PostgreSQL server${embeddedOnly ? " (skipped: DATABASE_URL is unset)" : ""}`, () => {
    it.scopedLive("an idle replica starts on items another replica queued at once, not at its next poll", () =>
      Effect.gen(function*() {
        const db = yield* createDatabase("jobs-wake")
        const submitter = yield* Layer.build(replicaOn(db.url))
        const worker = yield* Layer.build(replicaOn(db.url))
        const taken = yield* Queue.unbounded<number>()
        yield* Effect.provide(
          Effect.flatMap(JobQueue, (queue) => queue.workItems(1, (ids) => Effect.succeed(ids), () => Effect.flatMap(Clock.currentTimeMillis, (at) => taken.offer(at)))),
          worker
        )
        const enqueue = Effect.provide(
          Effect.flatMap(JobQueue, (queue) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(queue.enqueueItems([crypto.randomUUID()])))),
          submitter
        )
        // Polling alone (every second) would take a uniformly random 0-1000 ms each time: three
        // rounds all under 300 ms would happen by chance 3 % of the time.
        const delays: Array<number> = []
        for (let round = 0; round < 3; round++) {
          yield* Effect.sleep(`${700 + round * 150} millis`)
          const queuedAt = yield* Clock.currentTimeMillis
          yield* enqueue
          delays.push((yield* taken.take) - queuedAt)
        }
        expect(Math.max(...delays), `delays ${delays.join(", ")} ms`).toBeLessThan(300)
      }), { timeout: 60_000 })
  })
})
