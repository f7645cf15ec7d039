import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Deferred, Duration, Effect, Either, Metric, MetricBoundaries, Queue, Ref, Schedule } from "effect"
import type { UsageRecord } from "../domain/UsageRecord.js"
import { type Columns, insertParameters, insertStatement, toColumns } from "./LedgerRow.js"
import type { Spool } from "./Spool.js"

export interface LedgerWriterOptions {
  /** How long the writer waits for more rows after the first of a batch (zero: just let ready callers enqueue). */
  readonly gather: Duration.DurationInput
  readonly maxBatch: number
  /** Batches written at once; more rows gather while all are busy. */
  readonly concurrency: number
  /** An INSERT slower than this counts as a failure: its rows are spooled (a late commit is harmless, replay skips it by id). */
  readonly insertTimeout: Duration.DurationInput
  /** How often the spool is checked for rows to replay. */
  readonly replayEvery: Duration.DurationInput
}

export const defaultOptions: LedgerWriterOptions = {
  gather: Duration.zero,
  maxBatch: 500,
  concurrency: 4,
  insertTimeout: Duration.seconds(5),
  replayEvery: Duration.seconds(1)
}

export interface LedgerWriter {
  /** Resumes once the row is committed, or fsync'd to the spool when the database cannot take it. */
  readonly record: (row: UsageRecord) => Effect.Effect<void>
  /** Resumes once every row submitted before it is committed or spooled. */
  readonly flush: Effect.Effect<void>
  readonly spoolDepth: Effect.Effect<number>
}

const rowsCommitted = Metric.counter("ledger_rows_committed_total", { description: "Ledger rows inserted directly", incremental: true })
const rowsSpooled = Metric.counter("ledger_rows_spooled_total", { description: "Ledger rows written to the spool", incremental: true })
const rowsReplayed = Metric.counter("ledger_rows_replayed_total", { description: "Spooled ledger rows replayed into the database", incremental: true })
const insertStatements = Metric.counter("ledger_insert_statements_total", { description: "Ledger INSERT statements committed (group commits and replays)", incremental: true })
const batchRows = Metric.histogram(
  "ledger_batch_rows",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 10 }),
  "Rows per group-commit INSERT"
)
const spoolDepthGauge = Metric.gauge("ledger_spool_depth", { description: "Ledger rows waiting in the spool" })

type Item =
  | { readonly _tag: "Row"; readonly row: Columns; readonly done: Deferred.Deferred<void> }
  | { readonly _tag: "Flush"; readonly done: Deferred.Deferred<void> }

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const int32 = (n: number) => Math.min(2_147_483_647, Math.max(0, Math.round(Number.isFinite(n) ? n : 0)))

/**
 * Group commit: callers enqueue their row and wait; one writer fiber takes what has gathered
 * and writes it with one multi-row INSERT, resuming every caller of the batch once it is
 * committed. Up to `concurrency` batches are written at once; while all are busy the next batch
 * keeps gathering, so batches grow with load and a lone call waits for nothing but its INSERT.
 * When the database fails, the batch goes to the spool instead and the writer stays in spooling
 * mode (so callers do not each wait out a connect timeout) until a background fiber finds the
 * database back and has replayed the spool. Closing the scope drains the queue first.
 */
export const make = (spool: Spool, options: LedgerWriterOptions = defaultOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const queue = yield* Queue.unbounded<Item>()
    const spooling = yield* Ref.make(false)

    const insert = (rows: ReadonlyArray<Columns>) =>
      sql.unsafe(insertStatement, insertParameters(rows)).pipe(
        Effect.timeoutFail({ duration: options.insertTimeout, onTimeout: () => new Error("INSERT timed out") }),
        Effect.zipRight(Metric.increment(insertStatements))
      )

    const publishDepth = spool.depth.pipe(Effect.flatMap((n) => Metric.set(spoolDepthGauge, n)))

    const toSpool = (rows: ReadonlyArray<Columns>) =>
      spool.append(rows).pipe(
        Effect.zipRight(Metric.incrementBy(rowsSpooled, rows.length)),
        Effect.zipRight(publishDepth),
        // Without a disk to spool to, the callers wait rather than lose a billed call.
        Effect.tapError((error) => Effect.logError("Ledger spool write failed; retrying").pipe(Effect.annotateLogs("error", error.message))),
        Effect.retry(Schedule.spaced(Duration.seconds(1))),
        Effect.orDie
      )

    const commit = (rows: ReadonlyArray<Columns>) =>
      Effect.gen(function*() {
        if (!(yield* Ref.get(spooling))) {
          const result = yield* Effect.either(insert(rows))
          if (Either.isRight(result)) {
            yield* Metric.incrementBy(rowsCommitted, rows.length)
            return
          }
          if (!(yield* Ref.getAndSet(spooling, true))) {
            yield* Effect.logWarning("Ledger database unreachable; spooling rows to disk until it is back").pipe(
              Effect.annotateLogs("error", String(result.left))
            )
          }
        }
        yield* toSpool(rows)
      })

    const inFlight = yield* Effect.makeSemaphore(options.concurrency)

    const settle = (items: ReadonlyArray<Item>) => Effect.forEach(items, (item) => Deferred.succeed(item.done, undefined), { discard: true })

    const writeBatch = Effect.gen(function*() {
      const first = yield* Queue.take(queue)
      // While every INSERT slot is busy, rows keep gathering behind this first one.
      yield* inFlight.take(1)
      yield* Duration.toMillis(options.gather) > 0 ? Effect.sleep(options.gather) : Effect.yieldNow()
      const items = [first, ...(yield* Queue.takeUpTo(queue, options.maxBatch - 1))]
      const rows = items.flatMap((item) => (item._tag === "Row" ? [item.row] : []))
      const rowItems = items.filter((item) => item._tag === "Row")
      yield* Effect.fork(
        Effect.gen(function*() {
          if (rows.length > 0) {
            yield* Metric.update(batchRows, rows.length)
            yield* commit(rows)
          }
          yield* settle(rowItems)
        }).pipe(Effect.ensuring(inFlight.release(1)))
      )
      // A flush waits for every batch taken before it, this one included.
      const flushes = items.filter((item) => item._tag === "Flush")
      if (flushes.length > 0) yield* inFlight.withPermits(options.concurrency)(settle(flushes))
    })

    const replayOnce = Effect.gen(function*() {
      const wasSpooling = yield* Ref.get(spooling)
      if (!wasSpooling && (yield* spool.depth) === 0) return
      yield* sql`SELECT 1`.pipe(Effect.timeoutFail({ duration: options.insertTimeout, onTimeout: () => new Error("probe timed out") }))
      const replayed = yield* spool.replay(insert)
      yield* Ref.set(spooling, false)
      yield* Metric.incrementBy(rowsReplayed, replayed)
      yield* publishDepth
      yield* Effect.logInfo(wasSpooling ? "Ledger database reachable again; spool replayed" : "Ledger spool replayed").pipe(
        Effect.annotateLogs({ rows: replayed, spoolDepth: yield* spool.depth })
      )
    })

    const startDepth = yield* spool.depth
    if (startDepth > 0) yield* Effect.logInfo("Ledger spool holds rows from an earlier run; replaying").pipe(Effect.annotateLogs("rows", startDepth))
    yield* publishDepth

    // Real time even under a TestClock: a test driving retry backoff must not freeze the ledger.
    const realTime = Effect.withClock(Clock.make())
    yield* Effect.forkScoped(realTime(Effect.forever(writeBatch)))
    yield* Effect.forkScoped(realTime(
      replayOnce.pipe(
        Effect.catchAll((error) => Effect.logDebug("Ledger spool replay deferred").pipe(Effect.annotateLogs("error", String(error)))),
        Effect.repeat(Schedule.spaced(options.replayEvery))
      )
    ))

    const enqueue = (item: (done: Deferred.Deferred<void>) => Item) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<void>()
        yield* Queue.offer(queue, item(done))
        yield* Deferred.await(done)
      })

    const flush = enqueue((done) => ({ _tag: "Flush", done }))
    // Registered after the fibers, so it runs before they are interrupted: nothing queued is lost on shutdown.
    yield* Effect.addFinalizer(() => flush)

    const record = (record: UsageRecord) =>
      Effect.suspend(() => {
        const row = toColumns(record)
        const valid = uuid.test(row.id)
        const fixed: Columns = {
          ...row,
          id: valid ? row.id : crypto.randomUUID(),
          prompt_tokens: int32(row.prompt_tokens),
          completion_tokens: int32(row.completion_tokens),
          total_tokens: int32(row.total_tokens),
          attempt: int32(row.attempt),
          latency_ms: int32(row.latency_ms)
        }
        // A row the table would refuse would block the whole batch, and then the spool, forever.
        return (valid ? Effect.void : Effect.logError("Ledger row id is not a UUID; recorded under a new id").pipe(
          Effect.annotateLogs({ id: row.id, newId: fixed.id })
        )).pipe(Effect.zipRight(enqueue((done) => ({ _tag: "Row", row: fixed, done }))))
      })

    return { record, flush, spoolDepth: spool.depth } satisfies LedgerWriter
  })
