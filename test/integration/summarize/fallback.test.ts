import { describe, expect, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { Fault } from "../../support/OpenRouterEmulator.js"
import type { TestApp } from "../../support/TestApp.js"
import { makeTestApp } from "../../support/TestApp.js"
import { App, appLayer, getText, ledgerCount, liveBlock, metricValue, smallDiff, summarize } from "./support.js"

let distinct = 0
/** A change no earlier request made, so no answer comes from the cache. */
const freshChange = () => ({ diff: smallDiff(`We keep your data for ${++distinct} days and share it with partners.`) })

/**
 * One request whose upstream behaves as set up; the answer must be a fallback for `reason` with the
 * raw diff, after exactly as many upstream calls as the emulator saw, each of them in the ledger.
 */
const expectFallback = (app: TestApp, reason: string) =>
  Effect.gen(function*() {
    const change = freshChange()
    const metricsBefore = yield* getText(app, "/metrics")
    const callsBefore = app.emulator.completionCount()
    const rowsBefore = yield* ledgerCount(app)
    const answer = yield* summarize(app, change)
    const calls = app.emulator.completionCount() - callsBefore
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({
      status: "fallback",
      fallbackReason: reason,
      summary: null,
      rawDiff: change.diff,
      usage: null,
      cached: false,
      attempts: calls
    })
    expect((yield* ledgerCount(app)) - rowsBefore).toBe(calls)
    const labels = { outcome: "fallback", reason }
    expect(metricValue(yield* getText(app, "/metrics"), "summaries_total", labels)).toBe(metricValue(metricsBefore, "summaries_total", labels) + 1)
    return calls
  })

describe("POST /v1/summaries falls back with the raw diff and the reason", () => {
  // A high circuit threshold, so failures in one test do not open the circuit for the next; a short
  // timeout so that four timed-out attempts take two seconds, not four minutes.
  layer(appLayer({ env: { LLM_CIRCUIT_THRESHOLD: "1000", OPENROUTER_TIMEOUT_MS: "500" } }), liveBlock)("upstream failures", (it) => {
    const always = (fault: Fault) =>
      Effect.map(App, (app) => {
        app.emulator.reset()
        app.emulator.always(fault)
        return app
      })

    for (const status of [500, 502, 503] as const) {
      it.effect(`upstream_unavailable after ${status} on every attempt: 4 calls (3 retries)`, () =>
        Effect.flatMap(always({ kind: "status", status }), (app) => expectFallback(app, "upstream_unavailable")).pipe(
          Effect.map((calls) => expect(calls).toBe(4))
        ))
    }

    it.effect("upstream_unavailable after every attempt timed out: 4 calls", () =>
      Effect.flatMap(always({ kind: "delay", ms: 1_500 }), (app) => expectFallback(app, "upstream_unavailable")).pipe(
        Effect.map((calls) => expect(calls).toBe(4))
      ))

    it.effect("upstream_unavailable after the connection dropped on every attempt: 4 calls", () =>
      Effect.flatMap(always({ kind: "drop" }), (app) => expectFallback(app, "upstream_unavailable")).pipe(
        Effect.map((calls) => expect(calls).toBe(4))
      ))

    it.effect("rate_limited after a 429 on every attempt: 4 calls", () =>
      Effect.flatMap(always({ kind: "rate_limited", resetInMs: 20 }), (app) => expectFallback(app, "rate_limited")).pipe(
        Effect.map((calls) => expect(calls).toBe(4))
      ))

    for (const status of [400, 401, 402, 403, 404] as const) {
      it.effect(`upstream_rejected after a ${status}, without a retry`, () =>
        Effect.flatMap(always({ kind: "status", status }), (app) => expectFallback(app, "upstream_rejected")).pipe(
          Effect.map((calls) => expect(calls).toBe(1))
        ))
    }

    // A broken answer may be a one-off, so it is retried; one that stays broken is invalid_response.
    for (const kind of ["error_in_200", "malformed_json", "no_choices"] as const) {
      it.effect(`invalid_response when every answer is ${kind}: 4 calls`, () =>
        Effect.flatMap(always({ kind }), (app) => expectFallback(app, "invalid_response")).pipe(
          Effect.map((calls) => expect(calls).toBe(4))
        ))
    }

    it.effect("invalid_response when the answer was filtered to nothing, without a retry", () =>
      Effect.flatMap(always({ kind: "empty_content", finishReason: "content_filter" }), (app) => expectFallback(app, "invalid_response")).pipe(
        Effect.map((calls) => expect(calls).toBe(1))
      ))

    it.effect("a fault that clears before the retries run out still gives a summary, with every attempt counted", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.reset()
        app.emulator.script({ kind: "status", status: 502 }, { kind: "drop" })
        const answer = yield* summarize(app, freshChange())
        expect(answer.body).toMatchObject({ status: "summarized", fallbackReason: null, attempts: 3 })
        expect(app.emulator.completionCount()).toBe(3)
        expect(answer.body.usage.costUsd).toBe(app.emulator.calls[2]!.usage!.cost)
      }))
  })

  const withApp = (env: Record<string, string>, test: (app: TestApp) => Effect.Effect<void>) =>
    Effect.flatMap(makeTestApp({ env }), test)

  it.scopedLive("ai_disabled with AI_ENABLED=false: no upstream call", () =>
    withApp({ AI_ENABLED: "false" }, (app) =>
      Effect.map(expectFallback(app, "ai_disabled"), (calls) => {
        expect(calls).toBe(0)
        expect(app.emulator.completionCount()).toBe(0)
      })))

  it.scopedLive("no_api_key with OPENROUTER_API_KEY empty: no upstream call", () =>
    withApp({ OPENROUTER_API_KEY: "" }, (app) =>
      Effect.map(expectFallback(app, "no_api_key"), (calls) => {
        expect(calls).toBe(0)
        expect(app.emulator.completionCount()).toBe(0)
      })))

  it.scopedLive("budget_exceeded when the hard monthly cap cannot fit one call: no upstream call", () =>
    withApp({ COST_HARD_LIMIT_MONTHLY_USD: "0.000001" }, (app) =>
      Effect.map(expectFallback(app, "budget_exceeded"), (calls) => {
        expect(calls).toBe(0)
        expect(app.emulator.completionCount()).toBe(0)
      })))

  it.scopedLive("circuit_open after consecutive failures: the next request makes no upstream call", () =>
    withApp({ LLM_CIRCUIT_THRESHOLD: "2", LLM_CIRCUIT_COOLDOWN_MS: "60000" }, (app) =>
      Effect.gen(function*() {
        app.emulator.always({ kind: "status", status: 503 })
        const first = yield* summarize(app, freshChange())
        expect(first.status).toBe(200)
        expect(first.body.status).toBe("fallback")
        // Once the threshold is reached the remaining retries are refused by the breaker itself.
        expect(first.body.attempts).toBe(2)
        expect(app.emulator.completionCount()).toBe(2)
        app.emulator.always(null)
        expect(yield* expectFallback(app, "circuit_open")).toBe(0)
        expect(app.emulator.completionCount()).toBe(2)
      })))
})
