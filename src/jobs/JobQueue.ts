import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Chunk, Context, Data, Deferred, Effect, FiberSet, Layer, Option, Queue, Ref, Runtime, Schedule, Stream } from "effect"
import type { Scope } from "effect"
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
const inTransaction = <A>(what: string, run: (db: PgBoss.Db) => Promise<A>): Effect.Effect<A, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(currentDb, (db) =>
    Effect.mapError(boss(what, () => run(db)), (e) => new SqlError({ message: e.message, cause: e.cause })))

/**
 * pg-boss 10's `complete(name, ids, data, options)`: its typings offer `(name, ids, options)`, which
 * the code takes as `data`, and would then complete through its own connection, outside the transaction.
 */
const completeInWith = (engine: PgBoss) => (db: PgBoss.Db, queue: string, ids: ReadonlyArray<string>) =>
  (engine.complete.bind(engine) as unknown as (name: string, ids: ReadonlyArray<string>, data: undefined, options: PgBoss.ConnectionOptions) => Promise<void>)(
    queue,
    ids,
    undefined,
    { db }
  )

/** How long an idle replica waits before asking the queue again, unless it hears of new items meanwhile. */
const idlePoll = "1 second"

/**
 * Items put on the queue are announced here when their transaction commits, so every replica on
 * the same PostgreSQL server starts on them at once rather than at its next poll (up to a second
 * of the rate limit's allowance left unused).
 */
export const itemsChannel = "policy_summarizer_job_items"

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
  ) => Effect.Effect<void, never, Scope.Scope>
  /** Takes item messages and claims their items in one transaction, then runs `handle` for each claimed item, `slots` at a time. */
  readonly workItems: <C>(
    slots: number,
    claim: (itemIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<C>, SqlError, SqlClient.SqlClient>,
    handle: (claimed: C) => Effect.Effect<void>
  ) => Effect.Effect<void, never, Scope.Scope>
}>() {
  static readonly layer = Layer.scoped(JobQueue, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const config = yield* Config
  const sql = yield* SqlClient.SqlClient
  const pg = yield* PgClient.PgClient
  const db = yield* currentDb
  const runtime = yield* Effect.runtime<never>()
  // Two replicas starting at once on a fresh database: the second fails on the schema objects or
  // the queue the first just made, then finds them there.
  const startRace = Schedule.intersect(Schedule.recurs(3), Schedule.spaced("500 millis"))
  const engine = yield* Effect.acquireRelease(
    Effect.gen(function*() {
      const instance = yield* Effect.suspend(() => {
        const fresh = new PgBoss({ db, schema: "pgboss", schedule: false, supervise: true, migrate: true })
        fresh.on("error", (error) =>
          Runtime.runFork(runtime)(Effect.logWarning("Job queue error").pipe(Effect.annotateLogs("error", error.message))))
        return Effect.as(boss("start", () => fresh.start()), fresh)
      }).pipe(Effect.retry(startRace))
      const createQueue = (options: PgBoss.Queue) => Effect.retry(boss("createQueue", () => instance.createQueue(options.name, options)), startRace)
      // Item messages are completed as their items are claimed: the item's row, not the message, carries the work from then on.
      yield* createQueue({ name: itemsQueue, retryLimit: 0 })
      yield* createQueue({
        name: callbacksQueue,
        retryLimit: Math.max(0, config.jobs.callbackMaxAttempts - 1),
        retryDelay: 1,
        retryBackoff: true,
        expireInSeconds: 60
      })
      return instance
    }),
    (instance) => Effect.ignore(boss("stop", () => instance.stop({ graceful: false, wait: true, close: false })))
  )

  const completeIn = completeInWith(engine)
  const signal = yield* Ref.make(yield* Deferred.make<void>())
  const wake = Effect.flatMap(Deferred.make<void>(), (next) =>
    Effect.flatMap(Ref.getAndSet(signal, next), (current) => Deferred.succeed(current, undefined)))
  /** Until woken after `since` was read, or the poll interval passed. */
  const idle = (since: Deferred.Deferred<void>) => Effect.race(Deferred.await(since), Effect.sleep(idlePoll))

  // The embedded database serves one process's session: its other processes poll.
  if (Option.isSome(config.database.url)) {
    yield* pg.listen(itemsChannel).pipe(
      Stream.runForEach(() => wake),
      Effect.tapErrorCause((cause) => Effect.logWarning("Job queue: not hearing of new items; polling until listening again").pipe(Effect.annotateLogs("cause", String(cause)))),
      Effect.retry(Schedule.spaced("5 seconds")),
      Effect.forkScoped
    )
  }

  /**
   * `slots` workers: asks `next` for as many messages as slots are free, runs what it gives, and
   * waits only when the queue had no message at all (`None`); messages that turned out to need no
   * work (a cancelled item's) do not make it wait.
   */
  const serve = <A>(slots: number, next: (n: number) => Effect.Effect<Option.Option<ReadonlyArray<A>>>, run: (a: A) => Effect.Effect<void>) =>
    Effect.gen(function*() {
      if (slots <= 0) return
      const running = yield* FiberSet.make()
      // On shutdown the loop stops taking messages first; what runs may finish within SHUTDOWN_GRACE_MS, so a
      // graceful restart calls no item twice. Only what is left then is interrupted (and queued again).
      yield* Effect.addFinalizer(() => Effect.ignore(Effect.timeout(FiberSet.awaitEmpty(running), config.server.shutdownGraceMs)))
      const free = yield* Queue.bounded<void>(slots)
      yield* free.offerAll(Array.from({ length: slots }, () => undefined))
      const loop = Effect.gen(function*() {
        yield* free.take
        const wanted = 1 + Chunk.size(yield* free.takeUpTo(slots - 1))
        // Read before asking: a wake while the queue is being asked is not lost.
        const since = yield* Ref.get(signal)
        const fetched = yield* next(wanted)
        const taken = Option.getOrElse(fetched, (): ReadonlyArray<A> => [])
        yield* free.offerAll(Array.from({ length: wanted - taken.length }, () => undefined))
        for (const a of taken) yield* FiberSet.run(running, Effect.ensuring(run(a), free.offer(undefined)))
        if (Option.isNone(fetched)) yield* idle(since)
      })
      yield* Effect.forkScoped(Effect.forever(loop))
    })

  const unreachable = (queue: string) => <A>(effect: Effect.Effect<Option.Option<ReadonlyArray<A>>, QueueError | SqlError>) =>
    effect.pipe(
      Effect.tapError((e) => Effect.logWarning("Job queue unreachable; trying again").pipe(Effect.annotateLogs({ queue, error: String(e.cause) }))),
      Effect.orElseSucceed(() => Option.none<ReadonlyArray<A>>())
    )

  const someIfAny = <A>(messages: ReadonlyArray<A>) => messages.length === 0 ? Option.none() : Option.some(messages)

  const work = <D>(queue: string, slots: number, handle: (job: PgBoss.Job<D>) => Effect.Effect<void, unknown>) =>
    serve(
      slots,
      (n) => unreachable(queue)(Effect.map(boss("fetch", () => engine.fetch<D>(queue, { batchSize: n })), someIfAny)),
      (job) =>
        Effect.matchCauseEffect(handle(job), {
          onSuccess: () => Effect.ignore(boss("complete", () => engine.complete(queue, job.id))),
          onFailure: (cause) =>
            Effect.zipRight(
              Effect.logWarning("Job message failed; the queue retries it").pipe(Effect.annotateLogs({ queue, cause: String(cause) })),
              Effect.ignore(boss("fail", () => engine.fail(queue, job.id)))
            )
        })
    )

  /**
   * Items: each message is taken, its item claimed and the message completed in one transaction,
   * so a process that dies leaves either an untouched message or an item marked running by it
   * (which the heartbeat of another replica, or of this one restarted, queues again).
   */
  const workItems = <C>(
    slots: number,
    claim: (itemIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<C>, SqlError, SqlClient.SqlClient>,
    handle: (claimed: C) => Effect.Effect<void>
  ) =>
    serve(
      slots,
      (n) =>
        unreachable(itemsQueue)(sql.withTransaction(Effect.gen(function*() {
          const jobs = yield* inTransaction("fetch", (tx) => engine.fetch<{ readonly itemId: string }>(itemsQueue, { batchSize: n, db: tx }))
          if (jobs.length === 0) return Option.none()
          const claimed = yield* claim(jobs.map((job) => job.data.itemId))
          yield* inTransaction("complete", (tx) => completeIn(tx, itemsQueue, jobs.map((job) => job.id)))
          return Option.some(claimed)
        })).pipe(Effect.provideService(SqlClient.SqlClient, sql))),
      handle
    )

  return JobQueue.of({
    enqueueItems: (itemIds) =>
      inTransaction("insert", (db) => engine.insert(itemIds.map((itemId) => ({ name: itemsQueue, data: { itemId } })), { db })).pipe(
        Effect.zipRight(Effect.flatMap(SqlClient.SqlClient, (tx) => tx`SELECT pg_notify(${itemsChannel}, ${String(itemIds.length)})`)),
        Effect.asVoid
      ),
    enqueueCallback: (jobId) =>
      inTransaction("insert", (db) => engine.insert([{ name: callbacksQueue, data: { jobId } }], { db })),
    wake,
    work,
    workItems
  })
})
