import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Either, Option } from "effect"
import { createHash } from "node:crypto"
import { Config } from "../Config.js"
import type { AppConfig } from "../Config.js"
import { CurrentCaller } from "../domain/Caller.js"
import { BadRequest } from "../domain/ApiErrors.js"
import { Api } from "../http/Api.js"
import { fromUnifiedDiff } from "../summarize/Change.js"
import { validate } from "../summarize/SummariesHttp.js"
import { allowedCallback } from "./Callback.js"
import { JobQueue } from "./JobQueue.js"
import type { JobItemRequest, JobRequest } from "./JobsApi.js"
import { IdempotencyConflict, JobAccepted, JobNotFound, JobReplayed } from "./JobsApi.js"
import type { NewItem } from "./JobStore.js"
import { JobStore } from "./JobStore.js"

const bad = (field: string, message: string) => Effect.fail(new BadRequest({ field, message }))

/** One item checked as `POST /v1/summaries` checks its body, its error naming the item by index and id. */
const validateItem = (item: JobItemRequest, index: number, config: AppConfig): Effect.Effect<NewItem, BadRequest> => {
  const where = `items[${index}]`
  const named = `Item ${index}${item.id === undefined ? "" : ` (id "${item.id}")`}`
  const { id, ...body } = item
  const bytes = Buffer.byteLength(JSON.stringify(body))
  if (bytes > config.server.maxInputBytes) {
    return bad(where, `${named} is ${bytes} bytes; each item may be up to ${config.server.maxInputBytes} bytes (MAX_INPUT_BYTES)`)
  }
  return validate(body, config).pipe(
    Effect.mapError((e) => new BadRequest({ field: `${where}.${e.field}`, message: `${named}: ${e.message}` })),
    Effect.flatMap((input) => {
      const parsed = "diff" in input.change ? fromUnifiedDiff(input.change.diff) : Either.right(null)
      return Either.isLeft(parsed)
        ? bad(`${where}.diff`, `${named}: ${parsed.left.message}`)
        : Effect.succeed<NewItem>({ itemId: crypto.randomUUID(), clientId: id ?? null, input })
    })
  )
}

const validateJob = (payload: JobRequest, config: AppConfig) =>
  Effect.gen(function*() {
    const { jobs } = config
    if (payload.items.length === 0) return yield* bad("items", "`items` is empty; give 1 to JOB_MAX_ITEMS items")
    if (payload.items.length > jobs.maxItems) {
      return yield* bad("items", `\`items\` has ${payload.items.length} items; the limit is ${jobs.maxItems} (JOB_MAX_ITEMS)`)
    }
    const seen = new Map<string, number>()
    for (const [index, item] of payload.items.entries()) {
      if (item.id === undefined) continue
      const first = seen.get(item.id)
      if (first !== undefined) return yield* bad(`items[${index}].id`, `Item ${index} (id "${item.id}"): the id is already item ${first}'s; ids are unique within a job`)
      seen.set(item.id, index)
    }
    if (payload.callbackUrl !== undefined && !allowedCallback(payload.callbackUrl, jobs.callbackAllowedHosts)) {
      return yield* bad(
        "callbackUrl",
        jobs.callbackAllowedHosts.length === 0
          ? "Callbacks are off: no host is named in CALLBACK_ALLOWED_HOSTS"
          : `\`callbackUrl\` must be an http(s) URL on a host of CALLBACK_ALLOWED_HOSTS (${jobs.callbackAllowedHosts.join(", ")})`
      )
    }
    return yield* Effect.forEach(payload.items, (item, index) => validateItem(item, index, config))
  })

const notFound = (jobId: string) => new JobNotFound({ message: `No summary job ${jobId} (finished jobs are deleted after JOB_RETENTION_DAYS)` })

/** The job's address; a replayed submission answers 200 rather than the 202 of a new job (both bodies have the same shape). */
const located = (jobId: string, replayed: boolean) =>
  HttpApp.appendPreResponseHandler((_, response) => {
    const withLocation = HttpServerResponse.setHeader(response, "location", `/v1/summary-jobs/${jobId}`)
    return Effect.succeed(replayed ? HttpServerResponse.setStatus(withLocation, 200) : withLocation)
  })

export const JobsHttp = HttpApiBuilder.group(Api, "jobs", (handlers) =>
  Effect.gen(function*() {
    const config = yield* Config
    const store = yield* JobStore
    const queue = yield* JobQueue
    return handlers
      .handle("submit", ({ headers, payload }) =>
        Effect.gen(function*() {
          const items = yield* validateJob(payload, config)
          const caller = yield* CurrentCaller
          const created = yield* store.create({
            jobId: crypto.randomUUID(),
            caller: caller.name,
            idempotencyKey: headers["idempotency-key"] ?? null,
            bodyHash: createHash("sha256").update(JSON.stringify(payload)).digest("hex"),
            callbackUrl: payload.callbackUrl ?? null,
            items
          }, queue.enqueueItems)
          if (created._tag === "Existing" && !created.sameBody) {
            return yield* new IdempotencyConflict({ message: `Idempotency-Key was used for job ${created.job.jobId} with another body` })
          }
          const { job } = created
          yield* located(job.jobId, created._tag === "Existing")
          if (created._tag === "Created") yield* queue.wake
          const fields = { jobId: job.jobId, status: job.status, items: payload.items.length, createdAt: job.createdAt }
          return created._tag === "Created" ? new JobAccepted(fields) : new JobReplayed(fields)
        }))
      .handle("get", ({ path }) => Effect.flatMap(store.find(path.jobId), Option.match({ onNone: () => Effect.fail(notFound(path.jobId)), onSome: Effect.succeed })))
      .handle("items", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const job = yield* store.find(path.jobId)
          if (Option.isNone(job)) return yield* notFound(path.jobId)
          const after = urlParams.after === undefined ? undefined : Number(urlParams.after)
          if (after !== undefined && !(Number.isInteger(after) && after >= 0)) return yield* bad("after", "`after` must be the `next` of an earlier page")
          return yield* store.items(path.jobId, {
            limit: urlParams.limit ?? 100,
            ...(after === undefined ? {} : { after }),
            ...(urlParams.status === undefined ? {} : { status: urlParams.status })
          })
        }))
      .handle("cancel", ({ path }) =>
        Effect.flatMap(store.cancel(path.jobId, queue.enqueueCallback), Option.match({ onNone: () => Effect.fail(notFound(path.jobId)), onSome: Effect.succeed })))
  })
)
