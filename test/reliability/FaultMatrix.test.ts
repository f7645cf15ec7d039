import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import type { Fault } from "../support/OpenRouterEmulator.js"
import { makeTestApp } from "../support/TestApp.js"
import { postJson, request } from "./Client.js"
import { freshChange, report, sized } from "./support.js"

type Reason = "upstream_rejected" | "upstream_unavailable" | "rate_limited" | "invalid_response"

interface Case {
  readonly name: string
  readonly fault: Fault
  /** null: the answer is still usable, the summary is made. Several: DESIGN.md does not pin which. */
  readonly reasons: ReadonlyArray<Reason> | null
  readonly transient: boolean
  /** A floor on the latency of the always-failing request: the waits the provider asked for. */
  readonly minLatencyMs?: number
  /** Upstream calls a usable answer takes: a structured answer cut by `length` is not JSON, so it gets one corrective call. */
  readonly usableAfter?: number
}

const maxRetries = 3
const timeoutMs = 400
const recoverAfter = 2

const rejected = (status: 400 | 401 | 402 | 403 | 404): Case => ({ name: `status ${status}`, fault: { kind: "status", status }, reasons: ["upstream_rejected"], transient: false })
const unavailable = (status: 408 | 500 | 502 | 503 | 504): Case => ({ name: `status ${status}`, fault: { kind: "status", status }, reasons: ["upstream_unavailable"], transient: true })

/** Every fault kind the emulator injects, with DESIGN.md's fallback reason for it. */
const cases: ReadonlyArray<Case> = [
  ...([400, 401, 402, 403, 404] as const).map(rejected),
  ...([408, 500, 502, 503, 504] as const).map(unavailable),
  { name: "error_in_200", fault: { kind: "error_in_200" }, reasons: ["invalid_response"], transient: true },
  { name: "no_choices", fault: { kind: "no_choices" }, reasons: ["invalid_response"], transient: true },
  { name: "finish_error", fault: { kind: "finish_error" }, reasons: ["invalid_response"], transient: true },
  { name: "empty_content (stop)", fault: { kind: "empty_content", finishReason: "stop" }, reasons: ["invalid_response"], transient: true },
  // A filtered answer comes back filtered again: not worth a retry.
  { name: "empty_content (content_filter)", fault: { kind: "empty_content", finishReason: "content_filter" }, reasons: ["invalid_response"], transient: false },
  { name: "length", fault: { kind: "length" }, reasons: null, transient: false, usableAfter: 2 },
  { name: "malformed_json", fault: { kind: "malformed_json" }, reasons: ["invalid_response"], transient: true },
  // A body cut mid-way is both a network failure and an unparseable answer.
  { name: "cut_body", fault: { kind: "cut_body" }, reasons: ["upstream_unavailable", "invalid_response"], transient: true },
  { name: "delay past the timeout", fault: { kind: "delay", ms: timeoutMs * 3 }, reasons: ["upstream_unavailable"], transient: true },
  { name: "drop", fault: { kind: "drop" }, reasons: ["upstream_unavailable"], transient: true },
  { name: "rate_limited (reset only)", fault: { kind: "rate_limited", resetInMs: 200 }, reasons: ["rate_limited"], transient: true, minLatencyMs: maxRetries * 150 },
  { name: "rate_limited (Retry-After 1)", fault: { kind: "rate_limited", retryAfterSeconds: 1, resetInMs: 200 }, reasons: ["rate_limited"], transient: true, minLatencyMs: maxRetries * 1_000 },
  // Resets at the next UTC midnight, further than LLM_RETRY_MAX_WAIT_MS: not retried.
  { name: "daily_quota", fault: { kind: "daily_quota" }, reasons: ["rate_limited"], transient: false },
  { name: "no_cost", fault: { kind: "no_cost" }, reasons: null, transient: false },
  { name: "unknown_model", fault: { kind: "unknown_model" }, reasons: ["upstream_rejected"], transient: false }
]

interface Answer {
  readonly status: number
  readonly outcome: string
  readonly reason: string | null
  readonly attempts: number
  readonly latencyMs: number
}

describe("fault matrix", () => {
  it.scopedLive("every fault kind, always and repeated-then-recovered: the right attempts and reason, a ledger row per attempt, no 5xx", () =>
    Effect.gen(function*() {
      const app = yield* makeTestApp({
        env: {
          OPENROUTER_TIMEOUT_MS: String(timeoutMs),
          LLM_MAX_RETRIES: String(maxRetries),
          // Cases run one after another: an open circuit would carry one case's failures into the next.
          LLM_CIRCUIT_THRESHOLD: "1000",
          LLM_RATE_LIMIT_REQUESTS: "1000000",
          LLM_RATE_LIMIT_WINDOW_MS: "1000",
          SUMMARY_CACHE_TTL_MS: "0"
        }
      })
      const port = Number(new URL(app.url).port)
      const { emulator } = app
      const rows = Effect.map(app.sql<{ n: number }>`SELECT count(*)::int AS n FROM llm_api_usage`, (r) => r[0]!.n)
      const repeats = sized(1, 3)
      let requests = 0
      let non200 = 0
      let upstreamCalls = 0

      const summarize = Effect.gen(function*() {
        requests++
        const reply = yield* postJson(port, "/v1/summaries", freshChange())
        if (reply.status !== 200) non200++
        expect(reply.status, reply.body).toBe(200)
        const body = JSON.parse(reply.body)
        return { status: reply.status, outcome: body.status, reason: body.fallbackReason, attempts: body.attempts, latencyMs: body.latencyMs } satisfies Answer
      })

      /** Runs `body`, then checks that every upstream call it caused has its ledger row. */
      const accounted = <A, E>(label: string, body: Effect.Effect<A, E>) =>
        Effect.gen(function*() {
          const rowsBefore = yield* rows
          const callsBefore = emulator.completionCount()
          const result = yield* body
          const calls = emulator.completionCount() - callsBefore
          upstreamCalls += calls
          expect(yield* rows, `${label}: ledger rows vs upstream calls`).toBe(rowsBefore + calls)
          return { result, calls }
        })

      const expectFallback = (c: Case, answer: Answer, attempts: number) => {
        expect(answer.outcome, c.name).toBe("fallback")
        expect(c.reasons, c.name).toContain(answer.reason)
        expect(answer.attempts, `${c.name}: attempts`).toBe(attempts)
      }

      const always = (c: Case) =>
        Effect.gen(function*() {
          emulator.always(c.fault)
          const { calls, result } = yield* accounted(`${c.name} always`, summarize)
          emulator.always(null)
          if (c.reasons === null) {
            expect(result.outcome, c.name).toBe("summarized")
            expect(result.attempts, c.name).toBe(c.usableAfter ?? 1)
          } else {
            expectFallback(c, result, c.transient ? 1 + maxRetries : 1)
            if (c.minLatencyMs !== undefined) expect(result.latencyMs, `${c.name}: waited as asked`).toBeGreaterThanOrEqual(c.minLatencyMs)
          }
          expect(calls, `${c.name}: upstream calls`).toBe(result.attempts)
          return `${c.name}: ${result.outcome}${result.reason === null ? "" : `:${result.reason}`} x${result.attempts}`
        })

      /** The fault `recoverAfter` times, then success: a retry recovers a transient fault; a permanent one fails each request it meets. */
      const recovering = (c: Case) =>
        Effect.gen(function*() {
          emulator.script(...Array.from({ length: recoverAfter }, () => c.fault))
          const { calls, result: answers } = yield* accounted(`${c.name} recovering`, Effect.gen(function*() {
            const answers: Array<Answer> = []
            while (answers.length <= recoverAfter) {
              const answer = yield* summarize
              answers.push(answer)
              if (answer.outcome === "summarized" && (c.reasons !== null || answers.length > recoverAfter)) break
            }
            return answers
          }))
          if (c.reasons !== null && c.transient) {
            expect(answers.map((a) => [a.outcome, a.attempts]), c.name).toEqual([["summarized", recoverAfter + 1]])
          } else if (c.reasons !== null) {
            answers.slice(0, recoverAfter).forEach((a) => expectFallback(c, a, 1))
            expect(answers.map((a) => a.outcome).slice(recoverAfter), c.name).toEqual(["summarized"])
          } else {
            expect(answers.map((a) => a.outcome), c.name).toEqual(Array.from({ length: recoverAfter + 1 }, () => "summarized"))
          }
          expect(calls, `${c.name}: upstream calls`).toBe(answers.reduce((n, a) => n + a.attempts, 0))
        })

      const seen: Array<string> = []
      for (let r = 0; r < repeats; r++) {
        for (const c of cases) {
          emulator.reset()
          seen.push(yield* always(c))
          emulator.reset()
          yield* recovering(c)
        }
      }

      // no_cost: the ledger still prices the call, from the price table.
      const costSources = yield* app.sql<{ cost_source: string; n: number }>`
        SELECT cost_source, count(*)::int AS n FROM llm_api_usage WHERE status = 'success' GROUP BY 1 ORDER BY 1`
      expect(costSources.map((r) => r.cost_source)).toContain("pricing")
      expect(costSources.map((r) => r.cost_source)).not.toContain("unknown")

      const health = yield* request(port, { path: "/health" })
      expect(health.status).toBe(200)
      const totalRows = yield* rows
      expect(totalRows).toBe(upstreamCalls)
      yield* report(`fault matrix: ${cases.length} kinds x 2 modes x ${repeats} repeats, ${requests} requests, ${upstreamCalls} upstream calls, ${totalRows} ledger rows, ${non200} non-200`)
      yield* report(`fault matrix outcomes (always): ${seen.slice(0, cases.length).join("; ")}`)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))
})
