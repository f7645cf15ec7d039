import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { freePort } from "../../support/ServiceProcess.js"
import { App, appLayer, liveBlock } from "../summarize/support.js"
import { allItems, auth, CALLBACK_SECRET, cancel, get, item, receiver, refsCalled, submit, TOKEN, waitForJob } from "./support.js"

const databases = [
  ["PostgreSQL", {}],
  // No DATABASE_URL: the service opens its own embedded database under DATA_DIR, the queue included.
  ["the embedded database", { DATABASE_URL: "" }]
] as const

for (const [database, databaseEnv] of databases) {
  describe(`summary jobs on ${database}`, () => {
    layer(
      appLayer({
        env: {
          ...databaseEnv,
          API_TOKENS: `crawler:${TOKEN}`,
          CALLBACK_ALLOWED_HOSTS: "127.0.0.1",
          CALLBACK_SECRET,
          MAX_INPUT_BYTES: "4096",
          SUMMARY_FORMAT: "text"
        },
        emulator: { latencyMs: 20 }
      }),
      { ...liveBlock, timeout: "90 seconds" }
    )("submit, poll, page, cancel, idempotency, validation, callbacks", (it) => {
      it.effect("a job is accepted with 202 and its Location, drains to done, and pages through its items in submission order", () =>
        Effect.gen(function*() {
          const app = yield* App
          const items = Array.from({ length: 7 }, (_, i) => item(`doc-${i}`))
          const accepted = yield* submit(app, { items })
          expect(accepted.status).toBe(202)
          expect(accepted.body).toMatchObject({ status: "queued", items: 7 })
          expect(accepted.headers.get("location")).toBe(`/v1/summary-jobs/${accepted.body.jobId}`)

          const job = yield* waitForJob(app, accepted.body.jobId, (j) => j.status === "done")
          expect(job.counts).toEqual({ queued: 0, running: 0, summarized: 7, fallback: 0, cancelled: 0 })
          expect(job.finishedAt).not.toBeNull()
          expect(job.callback).toBeNull()

          const { items: listed, pages } = yield* allItems(app, accepted.body.jobId, 3)
          expect(pages).toBe(3)
          expect(listed.map((i) => i.id)).toEqual(items.map((i) => i.id))
          expect(listed.every((i) => i.status === "summarized" && i.result.status === "summarized" && i.result.summary.length > 0)).toBe(true)

          // The job's usage is its items' usage summed, and each ledger row names its item and the job's caller.
          const tokens = listed.reduce((n, i) => n + i.result.usage.totalTokens, 0)
          expect(job.usage.totalTokens).toBe(tokens)
          const rows = yield* app.sql<{ job_item_id: string | null; caller: string | null }>`
            SELECT job_item_id::text, caller FROM llm_api_usage WHERE job_item_id = ANY(${listed.map((i) => i.itemId)}::uuid[])`
          expect(rows).toHaveLength(7)
          expect(new Set(rows.map((r) => r.job_item_id))).toEqual(new Set(listed.map((i) => i.itemId)))
          expect(rows.every((r) => r.caller === "crawler")).toBe(true)
          const [cost] = yield* app.sql<{ cost: string }>`
            SELECT sum(cost_usd)::text AS cost FROM llm_api_usage u JOIN summary_job_items i ON i.id = u.job_item_id
            WHERE i.job_id = ${accepted.body.jobId}`
          expect(Number(cost!.cost)).toBeCloseTo(Number(job.usage.costUsd), 12)

          const summarizedOnly = yield* get(app, `/v1/summary-jobs/${accepted.body.jobId}/items?status=queued`)
          expect(summarizedOnly.body).toEqual({ items: [], next: null })
        }))

      it.effect("the same Idempotency-Key with the same body answers the existing job (200); with another body, 409", () =>
        Effect.gen(function*() {
          const app = yield* App
          const body = { items: [item("a"), item("b")] }
          const key = { "idempotency-key": `key-${Date.now()}` }
          const first = yield* submit(app, body, key)
          const again = yield* submit(app, body, key)
          const other = yield* submit(app, { items: [item("c")] }, key)
          expect(first.status).toBe(202)
          expect(again.status).toBe(200)
          expect(again.body.jobId).toBe(first.body.jobId)
          expect(again.headers.get("location")).toBe(`/v1/summary-jobs/${first.body.jobId}`)
          expect(other.status).toBe(409)
          expect(other.body._tag).toBe("IdempotencyConflict")
          const [jobs] = yield* app.sql<{ n: number }>`SELECT count(*)::int AS n FROM summary_jobs WHERE idempotency_key = ${key["idempotency-key"]}`
          expect(jobs!.n).toBe(1)
        }))

      it.effect("one bad item rejects the whole job with 400 naming the item (index and id) and the field", () =>
        Effect.gen(function*() {
          const app = yield* App
          const [before] = yield* app.sql<{ n: number }>`SELECT count(*)::int AS n FROM summary_jobs`
          const cases: ReadonlyArray<readonly [unknown, string, string]> = [
            [{ items: [item("ok"), { id: "broken", before: "only before" }] }, "items[1].after", "Item 1 (id \"broken\")"],
            [{ items: [item(), item(), { diff: "not a diff at all" }] }, "items[2].diff", "Item 2"],
            [{ items: [item(), { ...item(), temperature: 5 }] }, "items[1].temperature", "Item 1"],
            [{ items: [item("same"), item("same")] }, "items[1].id", "Item 1 (id \"same\")"],
            [{ items: [{ ...item("big"), after: "x".repeat(5000) }] }, "items[0]", "MAX_INPUT_BYTES"],
            [{ items: [] }, "items", "empty"]
          ]
          for (const [body, field, named] of cases) {
            const answer = yield* submit(app, body)
            expect(answer.status).toBe(400)
            expect(answer.body).toMatchObject({ _tag: "BadRequest", field })
            expect(answer.body.message).toContain(named)
          }
          const [after] = yield* app.sql<{ n: number }>`SELECT count(*)::int AS n FROM summary_jobs`
          expect(after!.n).toBe(before!.n)
        }))

      it.effect("a callback host not in CALLBACK_ALLOWED_HOSTS is refused with 400", () =>
        Effect.gen(function*() {
          const app = yield* App
          for (const callbackUrl of ["http://169.254.169.254/latest/meta-data", "http://localhost:9/hook", "ftp://127.0.0.1/hook", "not a url"]) {
            const answer = yield* submit(app, { items: [item()], callbackUrl })
            expect(answer.status).toBe(400)
            expect(answer.body).toMatchObject({ _tag: "BadRequest", field: "callbackUrl" })
          }
        }))

      it.effect("cancelling stops the items not yet started; the job ends cancelled with every item final and counts adding up", () =>
        Effect.gen(function*() {
          const app = yield* App
          const accepted = yield* submit(app, { items: Array.from({ length: 150 }, () => item()) })
          const cancelled = yield* cancel(app, accepted.body.jobId)
          expect(cancelled.status).toBe(200)
          expect(cancelled.body.status).toBe("cancelled")
          const job = yield* waitForJob(app, accepted.body.jobId, (j) => j.finishedAt !== null)
          const { cancelled: n, fallback, queued, running, summarized } = job.counts
          expect(queued + running).toBe(0)
          expect(summarized + fallback + n).toBe(150)
          expect(n).toBeGreaterThan(100)
          // Cancelled items never reach upstream.
          const { items } = yield* allItems(app, accepted.body.jobId, 1000)
          const called = new Set(refsCalled(app.emulator.calls.map((c) => c.body)))
          const cancelledRefs = items.filter((i) => i.status === "cancelled").length
          expect(cancelledRefs).toBe(n)
          expect((yield* cancel(app, crypto.randomUUID())).status).toBe(404)
          expect(called.size).toBeGreaterThan(0)
        }))

      it.effect("a finished job's callback is signed, verified by the receiver, and its state shows delivered", () =>
        Effect.gen(function*() {
          const app = yield* App
          const port = yield* freePort
          const { deliveries } = yield* receiver(port)
          const accepted = yield* submit(app, { items: [item("x"), item("y")], callbackUrl: `http://127.0.0.1:${port}/hook` })
          const job = yield* waitForJob(app, accepted.body.jobId, (j) => j.callback?.state === "delivered")
          expect(job.callback).toMatchObject({ url: `http://127.0.0.1:${port}/hook`, state: "delivered", attempts: 1, lastError: null })
          expect(deliveries).toHaveLength(1)
          expect(deliveries[0]!.valid).toBe(true)
          const body = JSON.parse(deliveries[0]!.body)
          expect(body).toMatchObject({ jobId: accepted.body.jobId, status: "done", counts: { summarized: 2 }, itemsUrl: `/v1/summary-jobs/${accepted.body.jobId}/items` })
          expect(body.usage.totalTokens).toBe(job.usage.totalTokens)
        }).pipe(Effect.scoped), { timeout: 30_000 })

      it.effect("a receiver that is down gets the callback once it is up: retried with backoff, then delivered", () =>
        Effect.gen(function*() {
          const app = yield* App
          const port = yield* freePort
          const accepted = yield* submit(app, { items: [item()], callbackUrl: `http://127.0.0.1:${port}/hook` })
          const failing = yield* waitForJob(app, accepted.body.jobId, (j) => j.callback?.attempts >= 1)
          expect(failing.callback.state).toBe("pending")
          expect(failing.callback.lastError).toContain("request failed")
          const { deliveries } = yield* receiver(port)
          const job = yield* waitForJob(app, accepted.body.jobId, (j) => j.callback?.state === "delivered", "40 seconds")
          expect(job.callback.attempts).toBeGreaterThan(1)
          expect(deliveries.length).toBeGreaterThanOrEqual(1)
          expect(deliveries.every((d) => d.valid)).toBe(true)
        }).pipe(Effect.scoped), { timeout: 60_000 })

      it.effect("an unknown job is 404; the jobs API needs the bearer token", () =>
        Effect.gen(function*() {
          const app = yield* App
          expect((yield* get(app, `/v1/summary-jobs/${crypto.randomUUID()}`)).status).toBe(404)
          expect((yield* get(app, "/v1/summary-jobs/not-a-uuid")).status).toBe(404)
          const anonymous = yield* Effect.promise(() => app.post("/v1/summary-jobs", { items: [item()] }))
          expect(anonymous.status).toBe(401)
          expect(auth.authorization).toContain(TOKEN)
        }))
    })
  })
}
