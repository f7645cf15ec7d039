import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as Money from "../domain/Money.js"
import type { SummaryInput } from "../summarize/Summarizer.js"
import type { Summary } from "../summarize/Summary.js"
import type { CallbackState, ItemStatus, Job, JobCounts, JobItem, JobStatus } from "./JobsApi.js"

export interface NewItem {
  readonly itemId: string
  readonly clientId: string | null
  readonly input: SummaryInput
}

export interface NewJob {
  readonly jobId: string
  readonly caller: string | null
  readonly idempotencyKey: string | null
  readonly bodyHash: string
  readonly callbackUrl: string | null
  readonly items: ReadonlyArray<NewItem>
}

/** What a submission found: its new job, or the job an earlier submission with the same key made. */
export type Created =
  | { readonly _tag: "Created"; readonly job: Job }
  | { readonly _tag: "Existing"; readonly job: Job; readonly sameBody: boolean }

export interface ClaimedItem {
  readonly itemId: string
  readonly jobId: string
  readonly caller: string | null
  readonly input: SummaryInput
}

/** A job whose last item just became final, with its callback if it has one. */
export interface FinishedJob {
  readonly jobId: string
  readonly callbackUrl: string | null
}

export interface CallbackTarget {
  readonly jobId: string
  readonly url: string
  readonly attempts: number
  readonly state: CallbackState
}

/** An item put back in the queue (a replica gone, or work given back). */
export interface Requeued {
  readonly itemId: string
}

/** Runs inside the caller's transaction: puts items on the queue with the rows that describe them. */
export type Enqueue = (itemIds: ReadonlyArray<string>) => Effect.Effect<void, SqlError, SqlClient.SqlClient>

export type EnqueueCallback = (jobId: string) => Effect.Effect<void, SqlError, SqlClient.SqlClient>

const JobRow = Schema.Struct({
  id: Schema.String,
  body_hash: Schema.String,
  callback_url: Schema.NullOr(Schema.String),
  callback_state: Schema.NullOr(Schema.Literal("pending", "delivered", "failed")),
  callback_attempts: Schema.Number,
  callback_last_error: Schema.NullOr(Schema.String),
  created_at: Schema.DateFromSelf,
  cancelled_at: Schema.NullOr(Schema.DateFromSelf),
  finished_at: Schema.NullOr(Schema.DateFromSelf),
  queued: Schema.Number,
  running: Schema.Number,
  summarized: Schema.Number,
  fallback: Schema.Number,
  cancelled: Schema.Number,
  prompt_tokens: Schema.NumberFromString,
  completion_tokens: Schema.NumberFromString,
  total_tokens: Schema.NumberFromString,
  cost_usd: Schema.BigDecimal,
  unknown_costs: Schema.Number
})
type JobRow = typeof JobRow.Type

const statusOf = (row: JobRow, counts: JobCounts): JobStatus =>
  row.cancelled_at !== null ? "cancelled"
  : row.finished_at !== null ? "done"
  : counts.queued === Object.values(counts).reduce((a, b) => a + b, 0) ? "queued"
  : "running"

const toJob = (row: JobRow): Job => {
  const counts = { queued: row.queued, running: row.running, summarized: row.summarized, fallback: row.fallback, cancelled: row.cancelled }
  return {
    jobId: row.id,
    status: statusOf(row, counts),
    counts,
    usage: {
      promptTokens: row.prompt_tokens,
      completionTokens: row.completion_tokens,
      totalTokens: row.total_tokens,
      // As for one summary: a single call of unknown cost makes the sum unknown.
      costUsd: row.unknown_costs > 0 ? null : Money.format(row.cost_usd)
    },
    createdAt: row.created_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
    callback: row.callback_url === null
      ? null
      : { url: row.callback_url, state: row.callback_state ?? "pending", attempts: row.callback_attempts, lastError: row.callback_last_error }
  }
}

const ItemRow = Schema.Struct({
  id: Schema.String,
  position: Schema.Number,
  client_id: Schema.NullOr(Schema.String),
  status: Schema.Literal("queued", "running", "summarized", "fallback", "cancelled"),
  result: Schema.NullOr(Schema.Unknown)
})

const ClaimRow = Schema.Struct({ id: Schema.String, job_id: Schema.String, caller: Schema.NullOr(Schema.String), input: Schema.Unknown })

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A replica whose heartbeat is older than this is gone: its running items are queued again. */
export const staleAfterSeconds = 10

/** Items this replica claimed but no longer works on (a release that failed) are queued again after this. */
const ownStaleSeconds = 60

/**
 * The jobs' own tables: jobs, items (input, then result), replicas' heartbeats and callback
 * state. An item moves queued → running (claimed by one replica) → summarized | fallback, or
 * queued → cancelled; each move is one conditional UPDATE, so a second delivery of the same queue
 * message finds nothing to do.
 */
export class JobStore extends Context.Tag("JobStore")<JobStore, {
  readonly create: (job: NewJob, enqueue: Enqueue) => Effect.Effect<Created>
  readonly find: (jobId: string) => Effect.Effect<Option.Option<Job>>
  readonly items: (
    jobId: string,
    page: { readonly status?: ItemStatus; readonly limit: number; readonly after?: number }
  ) => Effect.Effect<{ readonly items: ReadonlyArray<JobItem>; readonly next: string | null }>
  readonly cancel: (jobId: string, enqueueCallback: EnqueueCallback) => Effect.Effect<Option.Option<Job>>
  /** Marks the items still queued as running by `workerId`; the others (final, cancelled, running elsewhere) are left out. */
  readonly claim: (itemIds: ReadonlyArray<string>, workerId: string) => Effect.Effect<ReadonlyArray<ClaimedItem>, SqlError>
  readonly finish: (
    itemId: string,
    workerId: string,
    result: Summary,
    enqueueCallback: EnqueueCallback
  ) => Effect.Effect<Option.Option<FinishedJob>>
  readonly release: (itemId: string, workerId: string, enqueue: Enqueue) => Effect.Effect<void>
  readonly heartbeat: (
    workerId: string,
    active: ReadonlyArray<string>,
    enqueue: Enqueue,
    enqueueCallback: EnqueueCallback
  ) => Effect.Effect<ReadonlyArray<Requeued>>
  readonly leave: (workerId: string, enqueue: Enqueue) => Effect.Effect<void>
  readonly callbackTarget: (jobId: string) => Effect.Effect<Option.Option<CallbackTarget>>
  readonly callbackAttempted: (jobId: string, outcome: { readonly state: CallbackState; readonly error: string | null }) => Effect.Effect<number>
  readonly deleteFinishedBefore: (days: number) => Effect.Effect<number>
}>() {
  static readonly layer = Layer.effect(JobStore, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) => Effect.provideService(effect, SqlClient.SqlClient, sql)

  const jobRow = (jobId: string) =>
    Effect.flatMap(
      sql`
        SELECT j.id, j.body_hash, j.callback_url, j.callback_state, j.callback_attempts, j.callback_last_error,
               j.created_at, j.cancelled_at, j.finished_at,
               count(i.id) FILTER (WHERE i.status = 'queued')::int AS queued,
               count(i.id) FILTER (WHERE i.status = 'running')::int AS running,
               count(i.id) FILTER (WHERE i.status = 'summarized')::int AS summarized,
               count(i.id) FILTER (WHERE i.status = 'fallback')::int AS fallback,
               count(i.id) FILTER (WHERE i.status = 'cancelled')::int AS cancelled,
               coalesce(sum((i.result->'usage'->>'promptTokens')::bigint), 0)::text AS prompt_tokens,
               coalesce(sum((i.result->'usage'->>'completionTokens')::bigint), 0)::text AS completion_tokens,
               coalesce(sum((i.result->'usage'->>'totalTokens')::bigint), 0)::text AS total_tokens,
               coalesce(sum((i.result->'usage'->>'costUsd')::numeric), 0)::text AS cost_usd,
               count(i.id) FILTER (WHERE jsonb_typeof(i.result->'usage') = 'object' AND i.result->'usage'->>'costUsd' IS NULL)::int AS unknown_costs
        FROM summary_jobs j LEFT JOIN summary_job_items i ON i.job_id = j.id
        WHERE j.id = ${jobId}
        GROUP BY j.id`,
      (rows) => rows.length === 0 ? Effect.succeedNone : Effect.asSome(Schema.decodeUnknown(JobRow)(rows[0]))
    )

  const find = (jobId: string) => uuid.test(jobId) ? Effect.map(jobRow(jobId), Option.map(toJob)) : Effect.succeedNone

  const insertItems = (jobId: string, items: ReadonlyArray<NewItem>) =>
    sql.unsafe(
      `INSERT INTO summary_job_items (id, job_id, position, client_id, input)
       SELECT id, $1::uuid, position, client_id, input
       FROM unnest($2::uuid[], $3::int[], $4::varchar[], $5::jsonb[]) AS t(id, position, client_id, input)`,
      [jobId, items.map((i) => i.itemId), items.map((_, n) => n), items.map((i) => i.clientId), items.map((i) => JSON.stringify(i.input))]
    )

  const create = (job: NewJob, enqueue: Enqueue) =>
    sql.withTransaction(Effect.gen(function*() {
      const inserted = yield* sql`
        INSERT INTO summary_jobs (id, caller, idempotency_key, body_hash, item_count, callback_url, callback_state)
        VALUES (${job.jobId}, ${job.caller}, ${job.idempotencyKey}, ${job.bodyHash}, ${job.items.length},
                ${job.callbackUrl}, ${job.callbackUrl === null ? null : "pending"})
        ON CONFLICT (coalesce(caller, ''), idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id`
      if (inserted.length === 0) {
        const [existing] = yield* sql<{ id: string }>`
          SELECT id FROM summary_jobs WHERE coalesce(caller, '') = ${job.caller ?? ""} AND idempotency_key = ${job.idempotencyKey}`
        const row = yield* Effect.flatten(jobRow(existing!.id))
        return { _tag: "Existing", job: toJob(row), sameBody: row.body_hash === job.bodyHash } satisfies Created
      }
      yield* insertItems(job.jobId, job.items)
      yield* withSql(enqueue(job.items.map((i) => i.itemId)))
      return { _tag: "Created", job: toJob(yield* Effect.flatten(jobRow(job.jobId))) } satisfies Created
    })).pipe(Effect.orDie, Effect.withSpan("JobStore.create"))

  const items = (jobId: string, page: { readonly status?: ItemStatus; readonly limit: number; readonly after?: number }) =>
    Effect.gen(function*() {
      const rows = yield* sql`
        SELECT id, position, client_id, status, result FROM summary_job_items
        WHERE job_id = ${jobId} AND position > ${page.after ?? -1}
          ${page.status === undefined ? sql`` : sql`AND status = ${page.status}`}
        ORDER BY position
        LIMIT ${page.limit + 1}`
      const decoded = yield* Schema.decodeUnknown(Schema.Array(ItemRow))(rows)
      const shown = decoded.slice(0, page.limit)
      return {
        items: shown.map((r): JobItem => ({ itemId: r.id, id: r.client_id, status: r.status, result: r.result as Summary | null })),
        next: decoded.length > page.limit ? String(shown[shown.length - 1]!.position) : null
      }
    }).pipe(Effect.orDie, Effect.withSpan("JobStore.items"))

  /** Marks the job finished once no item is queued or running, and puts its callback on the queue with that. */
  const finishIfDone = (jobId: string, enqueueCallback: EnqueueCallback) =>
    Effect.gen(function*() {
      const done = yield* sql<{ id: string; callback_url: string | null }>`
        UPDATE summary_jobs SET finished_at = now()
        WHERE id = ${jobId} AND finished_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM summary_job_items WHERE job_id = ${jobId} AND status IN ('queued', 'running'))
        RETURNING id, callback_url`
      const row = done[0]
      if (row === undefined) return Option.none<FinishedJob>()
      if (row.callback_url !== null) yield* withSql(enqueueCallback(jobId))
      return Option.some<FinishedJob>({ jobId, callbackUrl: row.callback_url })
    })

  const lockJob = (jobId: string) => sql`SELECT id FROM summary_jobs WHERE id = ${jobId} FOR UPDATE`

  const cancel = (jobId: string, enqueueCallback: EnqueueCallback) =>
    !uuid.test(jobId) ? Effect.succeedNone : sql.withTransaction(Effect.gen(function*() {
      const locked = yield* lockJob(jobId)
      if (locked.length === 0) return Option.none<Job>()
      yield* sql`UPDATE summary_jobs SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = ${jobId} AND finished_at IS NULL`
      yield* sql`UPDATE summary_job_items SET status = 'cancelled', updated_at = now() WHERE job_id = ${jobId} AND status = 'queued'`
      yield* finishIfDone(jobId, enqueueCallback)
      return yield* find(jobId)
    })).pipe(Effect.orDie, Effect.withSpan("JobStore.cancel"))

  /** Runs in the caller's transaction (the one that takes the items' messages). */
  const claim = (itemIds: ReadonlyArray<string>, workerId: string) =>
    Effect.gen(function*() {
      const rows = yield* sql`
        UPDATE summary_job_items i SET status = 'running', claimed_by = ${workerId}, updated_at = now()
        FROM summary_jobs j
        WHERE i.id = ANY(${itemIds}::uuid[]) AND i.status = 'queued' AND j.id = i.job_id
        RETURNING i.id, i.job_id, j.caller, i.input`
      const decoded = yield* Schema.decodeUnknown(Schema.Array(ClaimRow))(rows).pipe(Effect.orDie)
      return decoded.map((row): ClaimedItem => ({ itemId: row.id, jobId: row.job_id, caller: row.caller, input: row.input as SummaryInput }))
    }).pipe(Effect.withSpan("JobStore.claim"))

  const finish = (itemId: string, workerId: string, result: Summary, enqueueCallback: EnqueueCallback) =>
    Effect.gen(function*() {
      const updated = yield* sql<{ job_id: string }>`
        UPDATE summary_job_items SET status = ${result.status}, result = ${JSON.stringify(result)}::jsonb, claimed_by = NULL, updated_at = now()
        WHERE id = ${itemId} AND status = 'running' AND claimed_by = ${workerId}
        RETURNING job_id`
      if (updated.length === 0) return Option.none<FinishedJob>()
      // Checked after the item's update committed, without a lock on the job: of two last items
      // finishing at once, the later check sees both. The heartbeat's sweep covers a crash in between.
      return yield* sql.withTransaction(finishIfDone(updated[0]!.job_id, enqueueCallback))
    }).pipe(Effect.orDie, Effect.withSpan("JobStore.finish"))

  const requeue = (rows: ReadonlyArray<{ id: string }>, enqueue: Enqueue) =>
    Effect.as(rows.length === 0 ? Effect.void : withSql(enqueue(rows.map((r) => r.id))), rows.map((r): Requeued => ({ itemId: r.id })))

  const release = (itemId: string, workerId: string, enqueue: Enqueue) =>
    sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql<{ id: string }>`
        UPDATE summary_job_items SET status = 'queued', claimed_by = NULL, updated_at = now()
        WHERE id = ${itemId} AND status = 'running' AND claimed_by = ${workerId}
        RETURNING id`
      yield* requeue(rows, enqueue)
    })).pipe(Effect.orDie, Effect.withSpan("JobStore.release"))

  const heartbeat = (workerId: string, active: ReadonlyArray<string>, enqueue: Enqueue, enqueueCallback: EnqueueCallback) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sql`
        INSERT INTO summary_job_workers (id, seen_at) VALUES (${workerId}, now())
        ON CONFLICT (id) DO UPDATE SET seen_at = now()`
      const rows = yield* sql.unsafe<{ id: string }>(
        `UPDATE summary_job_items SET status = 'queued', claimed_by = NULL, updated_at = now()
         WHERE id IN (
           SELECT i.id FROM summary_job_items i
           WHERE i.status = 'running' AND (
             (i.claimed_by = $1::uuid AND NOT (i.id = ANY($2::uuid[])) AND i.updated_at < now() - interval '${ownStaleSeconds} seconds')
             OR (i.claimed_by <> $1::uuid AND NOT EXISTS (
               SELECT 1 FROM summary_job_workers w
               WHERE w.id = i.claimed_by AND w.seen_at > now() - interval '${staleAfterSeconds} seconds'))
           )
           FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [workerId, active]
      )
      yield* sql`DELETE FROM summary_job_workers WHERE seen_at < now() - interval '1 day'`
      // Jobs whose last item's own check was lost (a crash right after the item was stored, or a cancel racing it).
      const finished = yield* sql<{ id: string; callback_url: string | null }>`
        UPDATE summary_jobs j SET finished_at = now()
        WHERE j.id IN (SELECT id FROM summary_jobs WHERE finished_at IS NULL FOR UPDATE SKIP LOCKED)
          AND NOT EXISTS (SELECT 1 FROM summary_job_items i WHERE i.job_id = j.id AND i.status IN ('queued', 'running'))
        RETURNING j.id, j.callback_url`
      for (const job of finished) if (job.callback_url !== null) yield* withSql(enqueueCallback(job.id))
      return yield* requeue(rows, enqueue)
    })).pipe(Effect.orDie, Effect.withSpan("JobStore.heartbeat"))

  /** A replica stopping: its running items (interrupted) go back to the queue at once. */
  const leave = (workerId: string, enqueue: Enqueue) =>
    sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql<{ id: string }>`
        UPDATE summary_job_items SET status = 'queued', claimed_by = NULL, updated_at = now()
        WHERE status = 'running' AND claimed_by = ${workerId}
        RETURNING id`
      yield* requeue(rows, enqueue)
      yield* sql`DELETE FROM summary_job_workers WHERE id = ${workerId}`
    })).pipe(Effect.orDie, Effect.withSpan("JobStore.leave"))

  const callbackTarget = (jobId: string) =>
    Effect.map(
      sql<{ id: string; callback_url: string | null; callback_attempts: number; callback_state: CallbackState | null }>`
        SELECT id, callback_url, callback_attempts, callback_state FROM summary_jobs WHERE id = ${jobId}`,
      (rows) => Option.flatMap(Option.fromNullable(rows[0]), (r) =>
        r.callback_url === null ? Option.none() : Option.some<CallbackTarget>({
          jobId: r.id,
          url: r.callback_url,
          attempts: r.callback_attempts,
          state: r.callback_state ?? "pending"
        }))
    ).pipe(Effect.orDie)

  const callbackAttempted = (jobId: string, outcome: { readonly state: CallbackState; readonly error: string | null }) =>
    Effect.map(
      sql<{ callback_attempts: number }>`
        UPDATE summary_jobs SET callback_attempts = callback_attempts + 1, callback_state = ${outcome.state}, callback_last_error = ${outcome.error}
        WHERE id = ${jobId}
        RETURNING callback_attempts`,
      (rows) => rows[0]?.callback_attempts ?? 0
    ).pipe(Effect.orDie)

  const deleteFinishedBefore = (days: number) =>
    Effect.map(
      sql`DELETE FROM summary_jobs WHERE finished_at < now() - make_interval(days => ${days}) RETURNING id`,
      (rows) => rows.length
    ).pipe(Effect.orDie, Effect.withSpan("JobStore.deleteFinishedBefore"))

  return JobStore.of({
    create,
    find: (jobId) => find(jobId).pipe(Effect.orDie),
    items,
    cancel,
    claim,
    finish,
    release,
    heartbeat,
    leave,
    callbackTarget,
    callbackAttempted,
    deleteFinishedBefore
  })
})
