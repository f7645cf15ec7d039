import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer } from "effect"
import { JobQueue } from "../../../src/jobs/JobQueue.js"
import { configLayer, createDatabase } from "../../support/TestDatabase.js"

describe("the job queue engine", () => {
  it.scopedLive("replicas starting at once on an empty database all start the queue (pg-boss installs its schema once)", () =>
    Effect.gen(function*() {
      const db = yield* createDatabase("jobs-queue")
      const replica = JobQueue.layer.pipe(
        Layer.provide(PgClient.layer({ url: db.url, maxConnections: 4 })),
        Layer.provide(configLayer({}))
      )
      const started = yield* Effect.all(
        Array.from({ length: 4 }, () => Effect.scoped(Effect.as(Layer.build(replica), "started")).pipe(Effect.tapErrorCause((c) => Effect.sync(() => console.log("CAUSE", JSON.stringify((c as any).error?.cause?.error?.cause?.message ?? String(c)).slice(0, 500)))))),
        { concurrency: "unbounded" }
      )
      expect(started).toEqual(["started", "started", "started", "started"])
    }), { timeout: 60_000 })
})
