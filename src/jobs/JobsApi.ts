import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { BadRequest } from "../domain/ApiErrors.js"
import { Authorization } from "../http/Authorization.js"
import { SummaryRequest } from "../summarize/SummariesApi.js"
import { Summary, SummaryUsage } from "../summarize/Summary.js"

export const ItemStatus = Schema.Literal("queued", "running", "summarized", "fallback", "cancelled")
export type ItemStatus = typeof ItemStatus.Type

export const JobStatus = Schema.Literal("queued", "running", "done", "cancelled")
export type JobStatus = typeof JobStatus.Type

export const CallbackState = Schema.Literal("pending", "delivered", "failed")
export type CallbackState = typeof CallbackState.Type

export const JobItemRequest = Schema.Struct({
  ...SummaryRequest.fields,
  /** The caller's own id for the item, unique within the job. */
  id: Schema.optional(Schema.String)
})
export type JobItemRequest = typeof JobItemRequest.Type

export const JobRequest = Schema.Struct({
  items: Schema.Array(JobItemRequest),
  callbackUrl: Schema.optional(Schema.String)
})
export type JobRequest = typeof JobRequest.Type

const acceptedFields = {
  jobId: Schema.String,
  status: JobStatus,
  items: Schema.Int,
  createdAt: Schema.String
}

/** A new job (202). */
export class JobAccepted extends Schema.Class<JobAccepted>("JobAccepted")(acceptedFields) {}

/** The job an earlier submission with the same `Idempotency-Key` and body made (200). */
export class JobReplayed extends Schema.Class<JobReplayed>("JobReplayed")(acceptedFields) {}

export const JobCounts = Schema.Struct({
  queued: Schema.Int,
  running: Schema.Int,
  summarized: Schema.Int,
  fallback: Schema.Int,
  cancelled: Schema.Int
})
export type JobCounts = typeof JobCounts.Type

export const JobCallback = Schema.Struct({
  url: Schema.String,
  state: CallbackState,
  attempts: Schema.Int,
  lastError: Schema.NullOr(Schema.String)
})

export const Job = Schema.Struct({
  jobId: Schema.String,
  status: JobStatus,
  counts: JobCounts,
  usage: SummaryUsage,
  createdAt: Schema.String,
  finishedAt: Schema.NullOr(Schema.String),
  callback: Schema.NullOr(JobCallback)
})
export type Job = typeof Job.Type

export const JobItem = Schema.Struct({
  itemId: Schema.String,
  id: Schema.NullOr(Schema.String),
  status: ItemStatus,
  result: Schema.NullOr(Summary)
})
export type JobItem = typeof JobItem.Type

export const JobItemsPage = Schema.Struct({
  items: Schema.Array(JobItem),
  /** The `after` of the next page; null on the last. */
  next: Schema.NullOr(Schema.String)
})

export class JobNotFound extends Schema.TaggedError<JobNotFound>()(
  "JobNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()(
  "IdempotencyConflict",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

const JobPath = Schema.Struct({ jobId: Schema.String })

export class JobsApi extends HttpApiGroup.make("jobs")
  .add(
    HttpApiEndpoint.post("submit", "/v1/summary-jobs")
      .setPayload(JobRequest)
      .setHeaders(Schema.Struct({ "idempotency-key": Schema.optional(Schema.String) }))
      .addSuccess(JobAccepted, { status: 202 })
      .addSuccess(JobReplayed, { status: 200 })
      .addError(BadRequest)
      .addError(IdempotencyConflict)
      .annotate(OpenApi.Summary, "Submit a batch of policy changes to summarize")
      .annotate(
        OpenApi.Description,
        "1 to JOB_MAX_ITEMS items, each the body of `POST /v1/summaries` plus an optional `id` of yours, unique in the job; " +
          "the body may be up to JOB_MAX_BYTES, each item up to MAX_INPUT_BYTES. One bad item rejects the job (400 naming its index, id and field). " +
          "Answers 202 with `Location: /v1/summary-jobs/{jobId}`. With `Idempotency-Key`, the same key and body answer the existing job (200); " +
          "the same key with another body is 409. Items are summarized durably by every replica at the shared rate limit, after interactive requests. " +
          "`callbackUrl` (its host in CALLBACK_ALLOWED_HOSTS, else 400) gets `{ jobId, status, counts, usage, itemsUrl }` once every item is final, " +
          "signed: `X-Signature-Timestamp` and `X-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\" with CALLBACK_SECRET>`; " +
          "retried with exponential backoff up to CALLBACK_MAX_ATTEMPTS times."
      )
  )
  .add(
    HttpApiEndpoint.get("get", "/v1/summary-jobs/:jobId")
      .setPath(JobPath)
      .addSuccess(Job)
      .addError(JobNotFound)
      .annotate(OpenApi.Summary, "A job's progress, summed usage and callback state")
  )
  .add(
    HttpApiEndpoint.get("items", "/v1/summary-jobs/:jobId/items")
      .setPath(JobPath)
      .setUrlParams(Schema.Struct({
        status: Schema.optional(ItemStatus),
        limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))),
        after: Schema.optional(Schema.String)
      }))
      .addSuccess(JobItemsPage)
      .addError(JobNotFound)
      .addError(BadRequest)
      .annotate(OpenApi.Summary, "A job's items in submission order, with their results")
      .annotate(OpenApi.Description, "`limit` 1 to 1000 (default 100); `after`: the `next` of the previous page; `status` filters.")
  )
  .add(
    HttpApiEndpoint.del("cancel", "/v1/summary-jobs/:jobId")
      .setPath(JobPath)
      .addSuccess(Job)
      .addError(JobNotFound)
      .annotate(OpenApi.Summary, "Cancel the items not yet started (those running finish)")
  )
  .middleware(Authorization)
{}
