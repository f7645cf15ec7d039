import type { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Chunk, Context, Data, Deferred, Effect, FiberSet, Layer, Queue, Ref, Runtime } from "effect"
import PgBoss from "pg-boss"
import { Config } from "../Config.js"
import { currentDb } from "./PgBossDb.js"

/** The queue of job items: one message per item (and one more per requeue); the item's row says whether work is left. */
export const itemsQueue = "summary-job-items"
/** One message per finished job with a callback; its retries are the callback's retries, with exponential backoff. */
export const callbacksQueue = "summary-job-callbacks"

export class QueueError extends Data.TaggedError("QueueError")<{ readonly message: string; readonly cause: unknown }> {}

const boss = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new QueueError({ message: `pg-boss ${what} failed`, cause }) })

/** Inside a transaction, the queue's rows commit (or roll back) with the caller's. */
const inTransaction = <A>(what: string, run: (db: PgBoss.Db) => Promise<A>) =>
  Effect.flatMap(currentDb, (db) =>
    Effect.mapError(boss(what, () => run(db)), (e) => new SqlError({ message: e.message, cause: e.cause })))

/** How long an idle replica waits before asking the queue again, unless this replica submitted meanwhile. */
const idlePoll = "1 second"

/**
 * The durable queue: pg-boss 10 on the service's own database (its tables in the `pgboss` schema),
 * started and stopped with the layer. Every replica runs workers; `work` drains one queue with a
 * fixed number of slots, asking for as many messages as it has free slots.
 */
export class JobQueue extends Context.Tag("JobQueue")<JobQueue, {
  /** Puts items on the queue; atomic with the caller's transaction. */
  readonly enqueueItems: (itemIds: ReadonlyArray<string>) => Effect.Effect<void, SqlError, SqlClient.SqlClient>
  readonly enqueueCallback: (jobId: string) => Effect.Effect<void, SqlError, SqlClient.SqlClient>
  /** Wakes this replica's idle workers at once (a job was just submitted here). */
  readonly wake: Effect.Effect<void>
  /** Runs `handle` for each message, `slots` at a time, until the scope closes; a failed handler's message is retried by the queue. */
  readonly work: <D>(
    queue: string,
    slots: number,
    handle: (job: PgBoss.Job<D>) => Effect.Effect<void, unknown>
  ) => Effect.Effect<void, never, import("effect").Scope.Scope>
}>() {
  static readonly layer = Layer.scoped(JobQueue, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const config = yield* Config
  const db = yield* currentDb
  const runtime = yield* Effect.runtime<never>()
  const engine = yield* Effect.acquireRelease(
    Effect.gen(function*() {
      const instance = new PgBoss({ db, schema: "pgboss", schedule: false, supervise: true, migrate: true })
      instance.on("error", (error) =>
        Runtime.runFork(runtime)(Effect.logWarning("Job queue error").pipe(Effect.annotateLogs("error", error.message))))
      yield* boss("start", () => instance.start())
      yield* boss("createQueue", () =>
        instance.createQueue(itemsQueue, {
          name: itemsQueue,
          // A message runs again only if its handler failed; the item's row keeps a second run from calling upstream twice.
          retryLimit: 20,
          retryDelay: 1,
          retryBackoff: true,
          expireInSeconds: 3_600
        }))
      yield* boss("createQueue", () =>
        instance.createQueue(callbacksQueue, {
          name: callbacksQueue,
          retryLimit: Math.max(0, config.jobs.callbackMaxAttempts - 1),
          retryDelay: 1,
          retryBackoff: true,
          expireInSeconds: 60
        }))
      return instance
    }),
    (instance) => Effect.ignore(boss("stop", () => instance.stop({ graceful: false, wait: true, close: false })))
  )

  const signal = yield* Ref.make(yield* Deferred.make<void>())
  const wake = Effect.flatMap(Deferred.make<void>(), (next) =>
    Effect.flatMap(Ref.getAndSet(signal, next), (current) => Deferred.succeed(current, undefined)))
  const idle = Effect.flatMap(Ref.get(signal), (current) => Effect.race(Deferred.await(current), Effect.sleep(idlePoll)))

  const work = <D>(queue: string, slots: number, handle: (job: PgBoss.Job<D>) => Effect.Effect<void, unknown>) =>
    Effect.gen(function*() {
      const running = yield* FiberSet.make()
      const free = yield* Queue.bounded<void>(Math.max(1, slots))
      yield* free.offerAll(Array.from({ length: slots }, () => undefined))
      const settle = (job: PgBoss.Job<D>) => (ok: boolean) =>
        Effect.ignore(ok ? boss("complete", () => engine.complete(queue, job.id)) : boss("fail", () => engine.fail(queue, job.id)))
      const run = (job: PgBoss.Job<D>) =>
        handle(job).pipe(
          Effect.matchCauseEffect({
            onSuccess: () => settle(job)(true),
            onFailure: (cause) =>
              Effect.zipRight(
                Effect.logWarning("Job message failed; the queue retries it").pipe(Effect.annotateLogs({ queue, cause: String(cause) })),
                settle(job)(false)
              )
          }),
          Effect.ensuring(free.offer(undefined))
        )
      const loop = Effect.gen(function*() {
        yield* free.take
        const more = yield* free.takeUpTo(slots - 1)
        const wanted = 1 + Chunk.size(more)
        const jobs = yield* boss("fetch", () => engine.fetch<D>(queue, { batchSize: wanted })).pipe(
          Effect.tapError((e) => Effect.logWarning("Job queue unreachable; trying again").pipe(Effect.annotateLogs({ queue, error: String(e.cause) }))),
          Effect.orElseSucceed((): Array<PgBoss.Job<D>> => [])
        )
        yield* free.offerAll(Array.from({ length: wanted - jobs.length }, () => undefined))
        for (const job of jobs) yield* FiberSet.run(running, run(job))
        if (jobs.length === 0) yield* idle
      })
      if (slots > 0) yield* Effect.forkScoped(Effect.forever(loop))
    })

  return JobQueue.of({
    enqueueItems: (itemIds) =>
      inTransaction("insert", (db) => engine.insert(itemIds.map((itemId) => ({ name: itemsQueue, data: { itemId } })), { db })),
    enqueueCallback: (jobId) =>
      inTransaction("insert", (db) => engine.insert([{ name: callbacksQueue, data: { jobId } }], { db })),
    wake,
    work
  })
})
