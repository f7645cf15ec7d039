import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { App, appLayer, liveBlock } from "../summarize/support.js"
import { allItems, item, submit, TOKEN, waitForJob } from "./support.js"

describe("summary jobs, budget and cache", () => {
  layer(appLayer({ env: { API_TOKENS: `crawler:${TOKEN}`, SUMMARY_FORMAT: "text" } }), liveBlock)("the cache", (it) => {
    it.effect("a job of changes already summarized is answered from the cache: no upstream call, nothing spent", () =>
      Effect.gen(function*() {
        const app = yield* App
        const items = Array.from({ length: 3 }, () => item())
        const first = yield* submit(app, { items })
        yield* waitForJob(app, first.body.jobId, (j) => j.status === "done")
        const calls = app.emulator.completionCount()
        const again = yield* submit(app, { items })
        const job = yield* waitForJob(app, again.body.jobId, (j) => j.status === "done")
        expect(app.emulator.completionCount()).toBe(calls)
        expect(job.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0, costUsd: "0" })
        const { items: listed } = yield* allItems(app, again.body.jobId, 10)
        expect(listed.every((i) => i.status === "summarized" && i.result.cached === true)).toBe(true)
      }))
  })

  layer(appLayer({ env: { API_TOKENS: `crawler:${TOKEN}`, SUMMARY_FORMAT: "text", COST_HARD_LIMIT_DAILY_USD: "0.00000001" } }), liveBlock)("a hard cap with no room", (it) => {
    it.effect("items refused by the hard cap are fallbacks with budget_exceeded, as in the synchronous path", () =>
      Effect.gen(function*() {
        const app = yield* App
        const accepted = yield* submit(app, { items: [item(), item()] })
        const job = yield* waitForJob(app, accepted.body.jobId, (j) => j.status === "done")
        expect(job.counts).toMatchObject({ summarized: 0, fallback: 2 })
        const { items } = yield* allItems(app, accepted.body.jobId, 10)
        expect(items.map((i) => [i.status, i.result.fallbackReason])).toEqual([["fallback", "budget_exceeded"], ["fallback", "budget_exceeded"]])
        expect(app.emulator.completionCount()).toBe(0)
      }))
  })
})
