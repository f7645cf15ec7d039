import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { readFile } from "node:fs/promises"
import { makeEmulator } from "../support/OpenRouterEmulator.js"
import { startService } from "../support/ServiceProcess.js"
import { TEST_API_KEY } from "../support/TestApp.js"
import { postJson, request } from "./Client.js"
import { count, freshChange, freshDatabase, ledgerRowsBy, outcomeOf, refOf, report, serviceEnv, sized, tally, tempDir } from "./support.js"

const mb = (kb: number) => `${Math.round(kb / 1024)} MB`

/** The process's peak resident set (VmHWM), in kB: what a sampler could miss between two samples. */
const peakRssKb = (pid: number) =>
  Effect.promise(() => readFile(`/proc/${pid}/status`, "utf8")).pipe(Effect.map((status) => Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(status)![1])))

/** `GET /health` latencies while `work` runs, every 100 ms. */
const healthDuring = <A, E>(port: number, work: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    let running = true
    const probe = yield* Effect.fork(Effect.whileLoop({
      while: () => running,
      body: () =>
        Effect.gen(function*() {
          const started = performance.now()
          yield* Effect.either(request(port, { path: "/health", timeoutMs: 60_000 }))
          latencies.push(performance.now() - started)
          yield* Effect.sleep("100 millis")
        }),
      step: () => undefined
    }))
    const result = yield* work
    running = false
    yield* Fiber.join(probe)
    return { result, maxHealthMs: Math.round(Math.max(0, ...latencies)) }
  })

/** A change of `n` edited paragraphs: over a 256-token input budget it becomes many parts. */
const bigChange = (tag: string, n: number) => {
  const paragraphs = Array.from({ length: n }, (_, i) => `Section ${i} of ${tag}: we keep records of type ${i} for ${i + 10} days.`)
  return {
    before: paragraphs.join("\n\n"),
    after: paragraphs.map((p, i) => p.replace(`${i + 10} days`, `${i + 400} days and share them`)).join("\n\n")
  }
}

describe("upstream limits under load (issue 10 §3, §4, §5)", () => {
  it.scopedLive("an upstream answering a huge content amid normal load: aborted at the cap, memory flat, /health answers, the ledger says why", () =>
    Effect.gen(function*() {
      const hugeBytes = sized(100, 400) * 1_048_576
      const total = sized(40, 120)
      const emulator = yield* makeEmulator({ latencyMs: 10 })
      const db = yield* freshDatabase("hugeanswer")
      const service = yield* startService(
        serviceEnv(emulator, db.url, yield* tempDir("hugeanswer"), { LOG_LEVEL: "warning", OPENROUTER_TIMEOUT_MS: "20000" }),
        { readyTimeout: "120 seconds" }
      )
      // Warm up, so the baseline is a running service's.
      yield* Effect.forEach(Array.from({ length: 10 }), () => postJson(service.port, "/v1/summaries", freshChange()), { concurrency: 4 })
      const baselineKb = yield* service.rssKb
      emulator.failRandomly(0.25, [{ kind: "huge_content", bytes: hugeBytes }], 5)

      const started = Date.now()
      const { maxHealthMs, result: replies } = yield* healthDuring(
        service.port,
        Effect.forEach(Array.from({ length: total }), () => Effect.either(postJson(service.port, "/v1/summaries", freshChange())), { concurrency: 8 })
      )
      const wall = Date.now() - started
      const outcomes = replies.map((r) => outcomeOf(r._tag === "Right" ? r.right : r.left))
      const peakKb = yield* peakRssKb(service.pid)
      const huge = emulator.injectedFaults()
      const codes = yield* ledgerRowsBy(db.url, "error_code")
      yield* report(
        `huge answers: ${total} summaries at 8 in flight in ${(wall / 1000).toFixed(1)} s, ${huge} answered with ${mb(hugeBytes / 1024)} of content; ` +
          `${tally(outcomes)}; ledger error codes ${codes}; RSS baseline ${mb(baselineKb)}, peak ${mb(peakKb)}; slowest GET /health ${maxHealthMs} ms`
      )
      const tooLarge = count(outcomes, (o) => o === "200 fallback:invalid_response")
      expect(huge).toBeGreaterThan(0)
      // Each huge answer is one fallback, not retried (unless the machine is so slow that it timed out first).
      expect(tooLarge).toBeGreaterThan(0)
      expect(count(outcomes, (o) => o === "200 summarized")).toBe(total - tooLarge)
      expect(codes).toContain(`response_too_large=${tooLarge}`)
      // Reading stops at about 1 MB per answer: nothing like the content's size reaches memory.
      expect(peakKb - baselineKb).toBeLessThan(150 * 1024)
      // Over a minute before; on a shared CI machine a second or two.
      expect(maxHealthMs).toBeLessThan(5_000)
    }))

  it.scopedLive("one-line summaries beside many-part ones at the rate limit: each waits for at most one permit per other request", () =>
    Effect.gen(function*() {
      const hogs = 3
      const probes = sized(6, 20)
      const emulator = yield* makeEmulator({ latencyMs: 20 })
      const db = yield* freshDatabase("fairness")
      const service = yield* startService(serviceEnv(emulator, db.url, yield* tempDir("fairness"), {
        LOG_LEVEL: "warning",
        // Slow enough that the time a request spends being read and prepared (long on a busy machine)
        // lets few calls start meanwhile; those are counted "ahead" of it too.
        LLM_RATE_LIMIT_REQUESTS: "4",
        LLM_RATE_LIMIT_WINDOW_MS: "1000",
        SUMMARY_INPUT_BUDGET_TOKENS: "256"
      }), { readyTimeout: "120 seconds" })
      let running = true
      const hogAnswers: Array<string> = []
      const hog = (h: number) =>
        Effect.whileLoop({
          while: () => running,
          body: () => Effect.either(postJson(service.port, "/v1/summaries", bigChange(`hog${h}-${hogAnswers.length}`, 40), {}, 300_000)),
          step: (r) => void hogAnswers.push(outcomeOf(r._tag === "Right" ? r.right : r.left))
        })
      const load = yield* Effect.fork(Effect.all(Array.from({ length: hogs }, (_, h) => hog(h)), { concurrency: "unbounded", discard: true }))
      // Let the limit fill and the hogs' parts queue.
      yield* Effect.sleep("3 seconds")

      const waits: Array<{ readonly ahead: number; readonly ms: number; readonly outcome: string }> = []
      for (let i = 0; i < probes; i++) {
        const change = freshChange()
        const ref = refOf(change)
        const before = emulator.completionCount()
        const started = performance.now()
        const reply = yield* Effect.either(postJson(service.port, "/v1/summaries", change))
        const ms = Math.round(performance.now() - started)
        const at = emulator.calls.findIndex((c) => JSON.stringify(c.body ?? "").includes(ref))
        waits.push({ ahead: at - before, ms, outcome: outcomeOf(reply._tag === "Right" ? reply.right : reply.left) })
        yield* Effect.sleep("400 millis")
      }
      running = false
      yield* Fiber.interrupt(load)

      const sorted = waits.map((w) => w.ms).sort((a, b) => a - b)
      yield* report(
        `fairness: ${hogs} many-part summaries kept going at 4 calls/s; ${probes} one-line summaries beside them: ` +
          `upstream calls started before each after it was sent ${waits.map((w) => w.ahead).join(",")}; latency median ${sorted[sorted.length >> 1]} ms, max ${sorted.at(-1)} ms; ` +
          `${tally(waits.map((w) => w.outcome))}; many-part answers ${tally(hogAnswers)}`
      )
      // Round-robin: one turn for each many-part summary waiting, plus the calls granted while the request
      // was read and prepared. First in, first out: every part they have queued (up to 8 each, 24 here).
      for (const w of waits) {
        expect(w.outcome).toBe("200 summarized")
        expect(w.ahead).toBeLessThanOrEqual(hogs + 3)
      }
      const aheads = waits.map((w) => w.ahead).sort((a, b) => a - b)
      expect(aheads[aheads.length >> 1]).toBeLessThanOrEqual(hogs)
    }))

  it.scopedLive("upstream errors that quote the key, under load: every fallback says why in a safe sentence, the key is in no answer and no log line", () =>
    Effect.gen(function*() {
      const total = sized(60, 300)
      const emulator = yield* makeEmulator({ latencyMs: 5 })
      const db = yield* freshDatabase("scrub")
      const service = yield* startService(serviceEnv(emulator, db.url, yield* tempDir("scrub"), { LLM_CIRCUIT_THRESHOLD: "1000" }), { readyTimeout: "120 seconds" })
      emulator.failRandomly(0.5, [
        { kind: "status", status: 401, echoAuthorization: true },
        { kind: "status", status: 400, message: `Invalid request for key ${TEST_API_KEY}`, metadata: { raw: `Authorization: Bearer ${TEST_API_KEY}` } },
        { kind: "status", status: 402 }
      ], 9)
      const replies = yield* Effect.forEach(
        Array.from({ length: total }),
        () => Effect.either(postJson(service.port, "/v1/summaries", freshChange())),
        { concurrency: 16 }
      )
      const bodies = replies.flatMap((r) => (r._tag === "Right" ? [r.right.body] : []))
      const fallbacks = bodies.map((b) => JSON.parse(b)).filter((b) => b.status === "fallback")
      const log = service.lines().join("\n")
      yield* report(
        `scrubbing: ${total} summaries at 16 in flight, ${emulator.injectedFaults()} upstream errors quoting the key or the header; ` +
          `${tally(fallbacks.map((f) => `${f.fallbackReason}: ${f.fallbackDetail}`))}; key in answers: ${bodies.some((b) => b.includes(TEST_API_KEY)) ? "FOUND" : "absent"}, ` +
          `in ${service.lines().length} log lines: ${log.includes(TEST_API_KEY) ? "FOUND" : "absent"} (${count(service.lines(), (l) => l.includes("[REDACTED]"))} lines with [REDACTED])`
      )
      expect(bodies).toHaveLength(total)
      expect(fallbacks.length).toBeGreaterThan(0)
      for (const f of fallbacks) expect(f.fallbackDetail).toMatch(/^OpenRouter (rejected|refused)/)
      expect(bodies.join("\n")).not.toContain(TEST_API_KEY)
      expect(log).not.toContain(TEST_API_KEY)
      expect(log).toContain("[REDACTED]")
    }))
})
