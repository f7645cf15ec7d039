import * as SqlClient from "@effect/sql/SqlClient"
import { Deferred, Duration, Effect, Exit, FiberId, Metric, MetricBoundaries, Schedule } from "effect"
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
export const insertStatements = Metric.counter("ledger_insert_statements_total", { description: "Ledger INSERT statements committed (group commits and replays)", incremental: true })
const batchRows = Metric.histogram(
  "ledger_batch_rows",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 10 }),
  "Rows per group-commit INSERT"
)
const spoolDepthGauge = Metric.gauge("ledger_spool_depth", { description: "Ledger rows waiting in the spool" })

/** Rows gathered for one INSERT and the one signal that settles all their callers. */
interface Batch {
  readonly rows: Array<Columns>
  readonly done: Deferred.Deferred<void>
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const int32 = (n: number) => Math.min(2_147_483_647, Math.max(0, Math.round(Number.isFinite(n) ? n : 0)))

/**
 * Group commit: a caller appends its row to the open batch and waits for that batch's one
 * signal; `concurrency` long-lived writer fibers each take the oldest batch, write it with one
 * multi-row INSERT and settle it once. While every writer is busy the open batch keeps gathering,
 * so batches grow with load and a lone call waits for nothing but its INSERT. When the database
 * fails, the batch goes to the spool instead and the writer stays in spooling mode (so callers do
 * not each wait out a timeout) until a background fiber finds the database back and has replayed
 * the spool. Closing the scope writes everything gathered first.
 */
export const make = (spool: Spool, options: LedgerWriterOptions = defaultOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    let spooling = false
    /** Oldest first; only the last one takes new rows, and only while it is below `maxBatch`. */
    const batches: Array<Batch> = []
    const writing = new Set<Batch>()
    /** Writers with nothing to do, each waiting to be woken by the next row. */
    const idle: Array<(go: Effect.Effect<void>) => void> = []

    // One timeout per batch, not per row: the pg client the writer is given has no query timeout of
    // its own, and a line to the database that stalls without an error must not hold callers.
    const insert = (rows: ReadonlyArray<Columns>) =>
      sql.unsafe(insertStatement, insertParameters(rows)).pipe(
        Effect.timeoutFail({ duration: options.insertTimeout, onTimeout: () => new Error("INSERT timed out") }),
        Effect.tap(() => insertStatements.unsafeUpdate(1, []))
      )

    const publishDepth = spool.depth.pipe(Effect.flatMap((n) => Metric.set(spoolDepthGauge, n)))

    const toSpool = (rows: ReadonlyArray<Columns>) =>
      spool.append(rows).pipe(
        Effect.zipRight(Effect.sync(() => rowsSpooled.unsafeUpdate(rows.length, []))),
        Effect.zipRight(publishDepth),
        // Without a disk to spool to, the callers wait rather than lose a billed call.
        Effect.tapError((error) => Effect.logError("Ledger spool write failed; retrying").pipe(Effect.annotateLogs("error", error.message))),
        Effect.retry(Schedule.spaced(Duration.seconds(1))),
        Effect.orDie
      )

    const commit = (rows: ReadonlyArray<Columns>): Effect.Effect<void> =>
      spooling
        ? toSpool(rows)
        : Effect.matchEffect(insert(rows), {
          onSuccess: () => Effect.sync(() => rowsCommitted.unsafeUpdate(rows.length, [])),
          onFailure: (error) => {
            const first = !spooling
            spooling = true
            const warn = first
              ? Effect.logWarning("Ledger database unreachable; spooling rows to disk until it is back").pipe(Effect.annotateLogs("error", String(error)))
              : Effect.void
            return Effect.zipRight(warn, toSpool(rows))
          }
        })

    const waitForWork = Effect.async<void>((resume) => {
      if (batches.length > 0) resume(Effect.void)
      else idle.push(resume)
    })

    const pause = Duration.toMillis(options.gather) > 0 ? Effect.sleep(options.gather) : Effect.yieldNow()

    /** One writer: wait for rows, let the ready ones gather, write the oldest batch, settle it. */
    const writer = waitForWork.pipe(
      Effect.zipRight(pause),
      Effect.zipRight(Effect.suspend(() => {
        const batch = batches.shift()
        if (batch === undefined) return Effect.void
        writing.add(batch)
        batchRows.unsafeUpdate(batch.rows.length, [])
        return commit(batch.rows).pipe(
          // A writer outlives any one batch: a defect is logged, not a writer lost.
          Effect.catchAllCause((cause) => Effect.logError("Ledger batch failed", cause)),
          Effect.ensuring(Effect.sync(() => {
            writing.delete(batch)
            Deferred.unsafeDone(batch.done, Exit.void)
          }))
        )
      })),
      Effect.forever
    )

    const replayOnce = Effect.gen(function*() {
      const wasSpooling = spooling
      if (!wasSpooling && (yield* spool.depth) === 0) return
      yield* sql`SELECT 1`.pipe(Effect.timeoutFail({ duration: options.insertTimeout, onTimeout: () => new Error("probe timed out") }))
      const replayed = yield* spool.replay(insert)
      spooling = false
      rowsReplayed.unsafeUpdate(replayed, [])
      yield* publishDepth
      yield* Effect.logInfo(wasSpooling ? "Ledger database reachable again; spool replayed" : "Ledger spool replayed").pipe(
        Effect.annotateLogs({ rows: replayed, spoolDepth: yield* spool.depth })
      )
    })

    const startDepth = yield* spool.depth
    if (startDepth > 0) yield* Effect.logInfo("Ledger spool holds rows from an earlier run; replaying").pipe(Effect.annotateLogs("rows", startDepth))
    yield* publishDepth

    for (let i = 0; i < options.concurrency; i++) yield* Effect.forkScoped(writer)
    yield* Effect.forkScoped(
      replayOnce.pipe(
        Effect.catchAll((error) => Effect.logDebug("Ledger spool replay deferred").pipe(Effect.annotateLogs("error", String(error)))),
        Effect.repeat(Schedule.spaced(options.replayEvery))
      )
    )

    /** The open batch, or a new one when there is none or it is full. */
    const openBatch = (): Batch => {
      const last = batches[batches.length - 1]
      if (last !== undefined && last.rows.length < options.maxBatch) return last
      const batch: Batch = { rows: [], done: Deferred.unsafeMake(FiberId.none) }
      batches.push(batch)
      return batch
    }

    const enqueue = (row: Columns) =>
      Effect.suspend(() => {
        const batch = openBatch()
        batch.rows.push(row)
        idle.shift()?.(Effect.void)
        return Deferred.await(batch.done)
      })

    /** Every batch gathered or being written now; a flush waits for each of them. */
    const flush = Effect.suspend(() => Effect.forEach([...writing, ...batches], (batch) => Deferred.await(batch.done), { discard: true }))
    // Registered after the fibers, so it runs before they are interrupted: nothing gathered is lost on shutdown.
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
        return valid ? enqueue(fixed) : Effect.logError("Ledger row id is not a UUID; recorded under a new id").pipe(
          Effect.annotateLogs({ id: row.id, newId: fixed.id }),
          Effect.zipRight(enqueue(fixed))
        )
      })

    return { record, flush, spoolDepth: spool.depth } satisfies LedgerWriter
  })
