import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { App, appLayer, liveBlock, summarize } from "../summarize/support.js"
import { auth, get, item, submit, TOKEN, waitForJob } from "./support.js"

const limit = 20
const windowMs = 1_000

describe("interactive requests first", () => {
  layer(
    appLayer({
      env: {
        API_TOKENS: `crawler:${TOKEN}`,
        LLM_RATE_LIMIT_REQUESTS: String(limit),
        LLM_RATE_LIMIT_WINDOW_MS: String(windowMs),
        JOB_CONCURRENCY: "4",
        SUMMARY_FORMAT: "text",
        SUMMARY_CACHE_TTL_MS: "0"
      },
      emulator: { latencyMs: 20 }
    }),
    { ...liveBlock, timeout: "90 seconds" }
  )("a 200-item job draining at the limit", (it) => {
    it.effect("a synchronous summary submitted meanwhile answers within one rate-limit window, not after the job", () =>
      Effect.gen(function*() {
        const app = yield* App
        const accepted = yield* submit(app, { items: Array.from({ length: 200 }, () => item()) })
        // Let the job fill the window, so the synchronous request has to wait for a permit.
        yield* waitForJob(app, accepted.body.jobId, (j) => j.counts.summarized >= 2 * limit)
        const started = Date.now()
        const answer = yield* summarize(app, item(), auth)
        const latencyMs = Date.now() - started
        expect(answer.status).toBe(200)
        expect(answer.body.status).toBe("summarized")
        const job = (yield* get(app, `/v1/summary-jobs/${accepted.body.jobId}`)).body
        // The job still has seconds of work left at the limit; the summary did not wait for it.
        expect(job.counts.queued).toBeGreaterThan(2 * limit)
        expect(latencyMs).toBeLessThan(windowMs)
        // And the job, alone again, drains at the full limit: 200 calls at 20/s take about 10 s.
        const done = yield* waitForJob(app, accepted.body.jobId, (j) => j.status === "done", "40 seconds")
        const drainMs = new Date(done.finishedAt).getTime() - new Date(done.createdAt).getTime()
        expect(drainMs).toBeLessThan((200 / limit) * windowMs * 1.5)
      }))
  })
})
