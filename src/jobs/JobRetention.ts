import { Effect, Layer, Schedule } from "effect"
import { Config } from "../Config.js"
import { JobStore } from "./JobStore.js"

/** Finished jobs (with their items) are deleted `JOB_RETENTION_DAYS` after they finished; checked hourly by every replica. */
export const JobRetention = Layer.scopedDiscard(Effect.gen(function*() {
  const { jobs } = yield* Config
  const store = yield* JobStore
  yield* Effect.forkScoped(
    store.deleteFinishedBefore(jobs.retentionDays).pipe(
      Effect.tap((deleted) => deleted === 0 ? Effect.void : Effect.logInfo("Finished summary jobs deleted").pipe(Effect.annotateLogs("jobs", deleted))),
      Effect.catchAllCause((cause) => Effect.logWarning("Summary job retention failed").pipe(Effect.annotateLogs("cause", String(cause)))),
      Effect.repeat(Schedule.spaced("1 hour"))
    )
  )
}))
