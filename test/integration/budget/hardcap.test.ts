import { describe, expect, layer } from "@effect/vitest"
import { BigDecimal, Effect } from "effect"
import { format, sum } from "../../../src/domain/Money.js"
import { App, appLayer, ledgerRows, liveBlock, smallDiff, summarize } from "../summarize/support.js"

// Prices chosen so the worst case is exact: prompts are free and every answer is cut at
// OPENROUTER_MAX_TOKENS, so each call costs its reservation, 16 x 0.0001 = 0.0016 USD.
const COMPLETION_PRICE = "0.0001"
const MAX_TOKENS = 16
const WORST_CASE = BigDecimal.unsafeFromString("0.0016")
// Room for 10 calls and a half: the 11th does not fit.
const CAP = BigDecimal.unsafeFromString("0.0168")
const FITTING = 10

const cappedApp = (latencyMs: number) =>
  appLayer({
    env: {
      COST_HARD_LIMIT_MONTHLY_USD: format(CAP),
      OPENROUTER_MAX_TOKENS: String(MAX_TOKENS),
      SUMMARY_CACHE_TTL_MS: "0",
      LLM_RATE_LIMIT_REQUESTS: "10000",
      LLM_MAX_CONCURRENCY: "50"
    },
    emulator: { latencyMs, prices: { "openai/gpt-4o-mini": { prompt: "0", completion: COMPLETION_PRICE } } }
  })

/** 50 summaries of distinct changes, all at once or the i-th after i x `staggerMs`; checks every promise of the cap. */
const run50 = (staggerMs: number) =>
  Effect.gen(function*() {
    const app = yield* App
    const answers = yield* Effect.forEach(
      Array.from({ length: 50 }, (_, i) => i),
      (i) =>
        Effect.zipRight(
          Effect.sleep(`${i * staggerMs} millis`),
          summarize(app, { diff: smallDiff(`We keep your data for ${i + 200} days.`) })
        ),
      { concurrency: "unbounded" }
    )
    for (const answer of answers) expect(answer.status).toBe(200)
    const summarized = answers.filter((a) => a.body.status === "summarized")
    const refused = answers.filter((a) => a.body.status === "fallback")
    expect(summarized.length + refused.length).toBe(50)
    for (const answer of refused) expect(answer.body).toMatchObject({ fallbackReason: "budget_exceeded", attempts: 0, summary: null })
    for (const answer of summarized) expect(answer.body.usage.costUsd).toBe(format(WORST_CASE))

    // Only the calls that were made reached the model, and each is in the ledger.
    expect(app.emulator.completionCount()).toBe(summarized.length)
    const rows = yield* ledgerRows(app)
    expect(rows).toHaveLength(summarized.length)
    const total = sum(rows.map((r) => BigDecimal.unsafeFromString(r.cost_usd!)))
    expect(BigDecimal.lessThanOrEqualTo(total, BigDecimal.sum(CAP, WORST_CASE)), `ledger total ${format(total)}`).toBe(true)
    // The estimate is exact here, so the cap holds exactly and is used to the full.
    expect(BigDecimal.lessThanOrEqualTo(total, CAP), `ledger total ${format(total)}`).toBe(true)
    expect(summarized.length).toBe(FITTING)
  })

describe("the hard monthly cap, end to end", () => {
  layer(cappedApp(0), liveBlock)("a cap that fits 10 calls", (it) => {
    it.effect("50 concurrent summaries: the calls that fit are made, the rest fall back with budget_exceeded and never reach the model", () =>
      run50(0))

    it.effect("once the cap is reached, a later summary falls back at once without an upstream call", () =>
      Effect.gen(function*() {
        const app = yield* App
        const before = app.emulator.completionCount()
        const answer = yield* summarize(app, { diff: smallDiff("We keep your data for 999 days.") })
        expect(answer.body).toMatchObject({ status: "fallback", fallbackReason: "budget_exceeded", attempts: 0 })
        expect(app.emulator.completionCount()).toBe(before)
      }))

    it.effect("while calls are refused, readiness says so: spent, reserved, and no room for one more worst-case call", () =>
      Effect.gen(function*() {
        const app = yield* App
        const reply = yield* Effect.promise(() => app.get("/health/ready").then(async (r) => ({ status: r.status, body: await r.json() as any })))
        // 10 calls spent 0.016 of 0.0168: under the cap, yet no room for a call of up to 0.0016.
        expect(reply.status).toBe(200)
        expect(reply.body).toMatchObject({ status: "ok", ai: "not_ready", budget: { ok: false } })
        // The key check comes first in the reason; on a loaded machine it can time out.
        if (reply.body.upstream.ok) expect(reply.body.reason).toBe("budget_no_room")
        expect(reply.body.budget.detail).toMatch(/no room for one more call/)
        expect(reply.body.budget.caps).toEqual([expect.objectContaining({
          budget: "monthly",
          limitUsd: format(CAP),
          spentUsd: "0.016",
          reservedUsd: "0",
          remainingUsd: "0.0008",
          worstCaseCallUsd: format(WORST_CASE),
          roomForOneMoreCall: false
        })])
        expect(reply.body.budget.caps[0].refusals).toBeGreaterThanOrEqual(40)
      }))
  })

  // Requests keep arriving while the admitted calls finish: a finished call's cost must count, as
  // spent or as still reserved, at every moment, or an arriving request slips into the gap.
  layer(cappedApp(20), liveBlock)("calls finishing while others arrive", (it) => {
    it.effect("50 summaries arriving 4 ms apart: the cap still admits exactly the calls that fit", () => run50(4))
  })
})
