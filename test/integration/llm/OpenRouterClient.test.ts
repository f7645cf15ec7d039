import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Ref } from "effect"
import { readFileSync } from "node:fs"
import { format } from "../../../src/domain/Money.js"
import { LlmClient } from "../../../src/llm/LlmClient.js"
import { openRouter } from "../../support/OpenRouterLayer.js"
import type { Emulator, Fault } from "../../support/OpenRouterEmulator.js"
import { expectedUsage, makeEmulator } from "../../support/OpenRouterEmulator.js"
import { closedCircuit, memoryLedger, openRateLimiter, staticPricing, unlimitedBudget } from "../../support/InMemory.js"
import { configLayer } from "../../support/TestDatabase.js"

const diff = readFileSync(new URL("../../fixtures/policy-changes/09-stack-overflow-privacy-policy/diff.patch", import.meta.url), "utf8")

/** The real OpenRouter client against the emulator; backoff shortened to keep real time small. */
const withClient = <A, E>(use: (client: LlmClient["Type"], emulator: Emulator) => Effect.Effect<A, E>, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const emulator = yield* makeEmulator()
    const ledger = yield* memoryLedger
    const layer = LlmClient.layer.pipe(
      Layer.provide([openRouter, ledger.layer, openRateLimiter, closedCircuit, unlimitedBudget, staticPricing]),
      Layer.provide(configLayer({
        OPENROUTER_API_KEY: "sk-or-v1-emulator",
        OPENROUTER_BASE_URL: emulator.baseUrl,
        OPENROUTER_APP_URL: "https://example.org/app",
        OPENROUTER_APP_TITLE: "policy-summarizer tests",
        OPENROUTER_TIMEOUT_MS: "400",
        LLM_RETRY_BASE_MS: "5",
        ...env
      }))
    )
    const result = yield* Effect.flatMap(LlmClient, (client) => use(client, emulator)).pipe(Effect.provide(layer))
    return { result, emulator, rows: yield* Ref.get(ledger.rows) }
  })

const summarize = (client: LlmClient["Type"]) =>
  client.generateCompletionResult({ messages: [{ role: "system", content: "Summarize." }, { role: "user", content: diff }] })

describe("LlmClient over OpenRouter (emulator)", () => {
  it.scopedLive("a fixture change comes back with the emulator's exact tokens, cost, id and headers", () =>
    Effect.gen(function*() {
      const { emulator, result, rows } = yield* withClient(summarize)
      expect(result.status).toBe("success")
      if (result.status !== "success") return
      const call = emulator.calls[0]!
      const expected = expectedUsage(call.body)
      expect(result.requestId).toBe(call.generationId)
      expect(result.requestId).toMatch(/^gen-\d+-[A-Za-z0-9]{20}$/)
      expect([result.usage.promptTokens, result.usage.completionTokens, result.usage.totalTokens])
        .toEqual([expected.prompt_tokens, expected.completion_tokens, expected.total_tokens])
      expect(Option.map(result.usage.costUsd, format)).toEqual(Option.some(expected.cost))
      expect([result.model, result.provider, result.finishReason]).toEqual(["openai/gpt-4o-mini", "OpenAI", "stop"])
      expect(call.headers["http-referer"]).toBe("https://example.org/app")
      expect(call.headers["x-title"]).toBe("policy-summarizer tests")
      expect(call.body).toMatchObject({ model: "openai/gpt-4o-mini", temperature: 0.7, max_tokens: 500 })
      expect(rows).toHaveLength(1)
    }))

  it.scopedLive("fallback models go out as OpenRouter's models list and the serving model is reported", () =>
    Effect.gen(function*() {
      const { emulator, result } = yield* withClient((c) =>
        c.generateCompletionResult({ messages: [{ role: "user", content: "x" }], model: "vendor/missing", fallbackModels: ["openai/gpt-4o"] })
      )
      expect(emulator.calls[0]!.body.models).toEqual(["vendor/missing", "openai/gpt-4o"])
      expect(result).toMatchObject({ status: "success", model: "openai/gpt-4o" })
    }))

  const faults: ReadonlyArray<[string, Fault, string, number]> = [
    ["400", { kind: "status", status: 400 }, "UpstreamRejected", 1],
    ["401", { kind: "status", status: 401 }, "UpstreamRejected", 1],
    ["402", { kind: "status", status: 402 }, "UpstreamRejected", 1],
    ["403 moderation", { kind: "status", status: 403 }, "UpstreamRejected", 1],
    ["404 unknown model", { kind: "unknown_model" }, "UpstreamRejected", 1],
    ["daily quota 429", { kind: "daily_quota" }, "UpstreamQuotaExhausted", 1],
    ["content filter", { kind: "empty_content", finishReason: "content_filter" }, "UpstreamUnusableAnswer", 1],
    ["408", { kind: "status", status: 408 }, "UpstreamTimeout", 4],
    ["500", { kind: "status", status: 500 }, "UpstreamServerError", 4],
    ["502", { kind: "status", status: 502 }, "UpstreamServerError", 4],
    ["503", { kind: "status", status: 503 }, "UpstreamServerError", 4],
    ["504", { kind: "status", status: 504 }, "UpstreamServerError", 4],
    ["429 with Retry-After", { kind: "rate_limited", retryAfterSeconds: 0, resetInMs: 10 }, "UpstreamRateLimited", 4],
    ["error inside a 200", { kind: "error_in_200" }, "UpstreamInvalidResponse", 4],
    ["no choices", { kind: "no_choices" }, "UpstreamInvalidResponse", 4],
    ["finish_reason error", { kind: "finish_error" }, "UpstreamInvalidResponse", 4],
    ["malformed JSON", { kind: "malformed_json" }, "UpstreamInvalidResponse", 4],
    ["cut body", { kind: "cut_body" }, "UpstreamNetworkError", 4],
    ["dropped connection", { kind: "drop" }, "UpstreamNetworkError", 4],
    ["delay past the timeout", { kind: "delay", ms: 1_000 }, "UpstreamTimeout", 4]
  ]
  for (const [name, fault, tag, calls] of faults) {
    it.scopedLive(`${name}: ${tag} after ${calls} upstream call${calls === 1 ? "" : "s"}, each in the ledger`, () =>
      Effect.gen(function*() {
        const { emulator, result, rows } = yield* withClient((c, e) => Effect.suspend(() => (e.always(fault), summarize(c))))
        expect(result).toMatchObject({ status: "error", error: { _tag: tag }, attempts: calls })
        expect(emulator.completionCount()).toBe(calls)
        expect(rows.map((r) => r.status)).toEqual(Array(calls).fill("error"))
        expect(JSON.stringify(result)).not.toContain("sk-or-v1-emulator")
      }))
  }

  it.scopedLive("recovers when a transient fault clears: 502, drop, then success in 3 calls", () =>
    Effect.gen(function*() {
      const { emulator, result, rows } = yield* withClient((c, e) =>
        Effect.suspend(() => (e.script({ kind: "status", status: 502 }, { kind: "drop" }), summarize(c)))
      )
      expect(result).toMatchObject({ status: "success", attempts: 3 })
      expect(emulator.completionCount()).toBe(3)
      expect(rows.map((r) => [r.attempt, r.status])).toEqual([[1, "error"], [2, "error"], [3, "success"]])
    }))

  it.scopedLive("usage without cost is priced from the table (source 'pricing')", () =>
    Effect.gen(function*() {
      const { emulator, result } = yield* withClient((c, e) => Effect.suspend(() => (e.script({ kind: "no_cost" }), summarize(c))))
      if (result.status !== "success") return expect.fail("expected success")
      expect(result.usage.costSource).toBe("pricing")
      expect(Option.map(result.usage.costUsd, format)).toEqual(Option.some(expectedUsage(emulator.calls[0]!.body).cost))
    }))

  it.scopedLive("the key check reads GET /key", () =>
    Effect.gen(function*() {
      const { emulator, result } = yield* withClient((c) => c.upstreamHealth)
      expect(result.ok).toBe(true)
      expect(emulator.keyCalls()).toBe(1)
    }))
})
