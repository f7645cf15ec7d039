import { Clock, Effect, Either, Layer, Option, Ref, Schedule } from "effect"
import type PgBoss from "pg-boss"
import { Config } from "../Config.js"
import { CurrentCaller } from "../domain/Caller.js"
import { CurrentJobItem } from "../domain/JobItem.js"
import { Summarizer } from "../summarize/Summarizer.js"
import * as Callback from "./Callback.js"
import { callbacksQueue, JobQueue } from "./JobQueue.js"
import type { ClaimedItem } from "./JobStore.js"
import { JobStore } from "./JobStore.js"

/** How often a replica says it is alive and looks for items left running by one that is gone. */
const heartbeatEvery = "2 seconds"

/** Slots for callback deliveries: few, they are short. */
const callbackSlots = 2

/**
 * Every replica's workers: job items through the same `Summarizer` as `POST /v1/summaries`
 * (with the job's caller, the item on each ledger row, and background priority at the rate
 * limiter), signed callbacks for finished jobs, and a heartbeat that queues again the items of
 * replicas gone without a word (SIGKILL, power loss).
 */
export const JobWorkers = Layer.scopedDiscard(Effect.gen(function*() {
  const config = yield* Config
  const queue = yield* JobQueue
  const store = yield* JobStore
  const summarizer = yield* Summarizer
  const workerId = crypto.randomUUID()
  // Items this replica works on now: never taken for orphans by its own heartbeat.
  const active = yield* Ref.make(new Set<string>())
  const track = (itemId: string) => (add: boolean) =>
    Ref.update(active, (set) => {
      const next = new Set(set)
      if (add) next.add(itemId)
      else next.delete(itemId)
      return next
    })

  const summarizeItem = ({ caller, input, itemId, jobId }: ClaimedItem) =>
    Effect.gen(function*() {
      const outcome = yield* summarizer.summarize({ ...input, owner: `job:${jobId}`, priority: "background" }).pipe(
        Effect.provideService(CurrentCaller, { name: caller }),
        Effect.provideService(CurrentJobItem, { id: itemId }),
        Effect.either
      )
      if (Either.isRight(outcome)) {
        yield* store.finish(itemId, workerId, outcome.right, queue.enqueueCallback)
        return
      }
      // The limiter's queue is full (interactive requests first): give the item back and try later.
      yield* Effect.logWarning("Job item given back to the queue").pipe(Effect.annotateLogs({ itemId, reason: outcome.left._tag }))
      yield* Effect.sleep("1 second")
      yield* store.release(itemId, workerId, queue.enqueueItems)
    })

  const runItem = (claimed: ClaimedItem) =>
    Effect.acquireUseRelease(
      track(claimed.itemId)(true),
      () => summarizeItem(claimed),
      () => track(claimed.itemId)(false)
    ).pipe(
      Effect.catchAllCause((cause) => Effect.logError("Job item failed; it is queued again by the heartbeat").pipe(Effect.annotateLogs({ itemId: claimed.itemId, cause: String(cause) }))),
      Effect.withSpan("JobWorker.item")
    )

  const runCallback = (job: PgBoss.Job<{ readonly jobId: string }>) =>
    Effect.gen(function*() {
      const target = yield* store.callbackTarget(job.data.jobId)
      if (Option.isNone(target) || target.value.state !== "pending") return
      const found = yield* store.find(job.data.jobId)
      if (Option.isNone(found)) return
      const view = found.value
      const secret = config.jobs.callbackSecret
      // Settings changed since the job was accepted: the host is no longer one callbacks may reach.
      if (Option.isNone(secret) || !Callback.allowedCallback(target.value.url, config.jobs.callbackAllowedHosts)) {
        yield* store.callbackAttempted(view.jobId, { state: "failed", error: "the host is not in CALLBACK_ALLOWED_HOSTS (or CALLBACK_SECRET is unset) any more" })
        return
      }
      const body = JSON.stringify({
        jobId: view.jobId,
        status: view.status,
        counts: view.counts,
        usage: view.usage,
        itemsUrl: `/v1/summary-jobs/${view.jobId}/items`
      })
      const now = new Date(yield* Clock.currentTimeMillis)
      const sent = yield* Effect.either(Callback.deliver(target.value.url, body, secret.value, now))
      if (Either.isRight(sent)) {
        yield* store.callbackAttempted(view.jobId, { state: "delivered", error: null })
        return
      }
      const last = target.value.attempts + 1 >= config.jobs.callbackMaxAttempts
      yield* store.callbackAttempted(view.jobId, { state: last ? "failed" : "pending", error: sent.left.message })
      yield* Effect.logWarning(last ? "Job callback failed; no attempts left" : "Job callback failed; it is retried").pipe(
        Effect.annotateLogs({ jobId: view.jobId, error: sent.left.message, attempt: target.value.attempts + 1 })
      )
      // Failing the message makes the queue retry it with its backoff.
      if (!last) return yield* sent.left
    }).pipe(Effect.withSpan("JobWorker.callback"))

  // Registered before the workers start, so it runs after they are interrupted: their items go back at once.
  yield* Effect.addFinalizer(() => store.leave(workerId, queue.enqueueItems))
  yield* store.heartbeat(workerId, [], queue.enqueueItems, queue.enqueueCallback)
  yield* Effect.forkScoped(
    Effect.flatMap(Ref.get(active), (set) => store.heartbeat(workerId, [...set], queue.enqueueItems, queue.enqueueCallback)).pipe(
      Effect.tap((requeued) =>
        requeued.length === 0 ? Effect.void : Effect.logInfo("Job items of a stopped replica queued again").pipe(Effect.annotateLogs("items", requeued.length))),
      Effect.catchAllCause((cause) => Effect.logWarning("Job heartbeat failed").pipe(Effect.annotateLogs("cause", String(cause)))),
      Effect.repeat(Schedule.spaced(heartbeatEvery))
    )
  )
  yield* queue.workItems(config.jobs.concurrency, (itemIds) => store.claim(itemIds, workerId), runItem)
  yield* queue.work(callbacksQueue, config.jobs.concurrency > 0 ? callbackSlots : 0, runCallback)
}))
