import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { expectedUsage } from "../../support/OpenRouterEmulator.js"
import { App, appLayer, liveBlock } from "../summarize/support.js"
import { bearer, chat, gatewayEnv, rowsWhen, resetLedger, sseChunks, userMessage } from "./support.js"

describe("POST /v1/chat/completions", () => {
  layer(appLayer({ env: gatewayEnv }), liveBlock)("non-streaming", (it) => {
    it.effect("passes OpenRouter's answer through, with one ledger row carrying its exact cost, the caller and X-Purpose", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const body = { ...userMessage("What changed in the refund policy?"), temperature: 0.2, max_tokens: 100, seed: 7 }
        const reply = yield* chat(app, body, { ...bearer("chatbot"), "x-purpose": "qa" })
        expect(reply.status).toBe(200)
        const expected = expectedUsage({ ...body })
        expect(reply.json.object).toBe("chat.completion")
        expect(reply.json.usage.total_tokens).toBe(expected.total_tokens)
        expect(reply.text).toContain(`"cost":${expected.cost}`)
        // Fields the gateway does not know reach upstream as sent.
        expect(app.emulator.calls[0]!.body).toMatchObject({ seed: 7, temperature: 0.2, max_tokens: 100 })
        const [row, ...rest] = yield* rowsWhen(app, 1)
        expect(rest).toEqual([])
        expect(row).toMatchObject({ status: "success", caller: "chatbot", purpose: "qa", cost_usd: expected.cost, cost_source: "provider", request_id: reply.json.id })
      }))

    it.effect("the default purpose is chat, and a missing max_tokens becomes OPENROUTER_MAX_TOKENS upstream", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const reply = yield* chat(app, userMessage("hello"), bearer("default"))
        expect(reply.status).toBe(200)
        expect(app.emulator.calls[0]!.body.max_tokens).toBe(500)
        const [row] = yield* rowsWhen(app, 1)
        expect(row).toMatchObject({ purpose: "chat", caller: "default" })
      }))

    it.effect("400 in OpenAI's shape for a model outside OPENROUTER_ALLOWED_MODELS, bad JSON or no messages, with no upstream call", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const cases: ReadonlyArray<readonly [unknown, string]> = [
          [{ ...userMessage("hi"), model: "anthropic/claude-3-opus" }, "model"],
          [{ model: "openai/gpt-4o-mini", messages: [] }, "messages"],
          [{ ...userMessage("hi"), max_tokens: 100000 }, "max_tokens"],
          ["{not json", "body"]
        ]
        for (const [body, param] of cases) {
          const reply = yield* chat(app, body)
          expect(reply.status).toBe(400)
          expect(reply.json.error).toMatchObject({ type: "invalid_request_error", param, code: "invalid_request", message: expect.any(String) })
        }
        expect(app.emulator.completionCount()).toBe(0)
      }))

    it.effect("upstream's rejection keeps its status; exhausted transient retries are 502 (504 for timeouts); a 429 carries Retry-After", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        app.emulator.script({ kind: "status", status: 400, message: "Bad input" })
        const rejected = yield* chat(app, userMessage("a"))
        expect(rejected.status).toBe(400)
        expect(rejected.json.error).toMatchObject({ message: "Bad input", code: "400" })

        app.emulator.script({ kind: "status", status: 402, message: "Insufficient credits" })
        expect((yield* chat(app, userMessage("b"))).status).toBe(402)

        app.emulator.script(...Array.from({ length: 3 }, () => ({ kind: "status" as const, status: 500 as const })))
        const exhausted = yield* chat(app, userMessage("c"))
        expect(exhausted.status).toBe(502)
        expect(exhausted.json.error.type).toBe("api_error")

        app.emulator.script(...Array.from({ length: 3 }, () => ({ kind: "delay" as const, ms: 6_000 })))
        expect((yield* chat(app, userMessage("d"))).status).toBe(504)

        app.emulator.script(...Array.from({ length: 3 }, () => ({ kind: "rate_limited" as const, retryAfterSeconds: 0, resetInMs: 20 })))
        const limited = yield* chat(app, userMessage("e"))
        expect(limited.status).toBe(429)
        expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)

        const rows = yield* rowsWhen(app, 11)
        expect(rows.map((r) => r.error_code)).toEqual(["400", "402", "500", "500", "500", "timeout", "timeout", "timeout", "429", "429", "429"])
        expect(rows.every((r) => r.caller === "chatbot" && r.purpose === "chat")).toBe(true)
      }))

    it.effect("a 200 with an error inside is retried, then 502, every attempt in the ledger", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        app.emulator.script({ kind: "finish_error" })
        const reply = yield* chat(app, userMessage("f"))
        expect(reply.status).toBe(200)
        const rows = yield* rowsWhen(app, 2)
        expect(rows.map((r) => [r.status, r.attempt])).toEqual([["error", 1], ["success", 2]])
      }))

    it.effect("GET /v1/models lists the allowed models in OpenAI's list shape", () =>
      Effect.gen(function*() {
        const app = yield* App
        const response = yield* Effect.promise(() => app.get("/v1/models", bearer("chatbot")).then((r) => r.json() as Promise<any>))
        expect(response).toEqual({
          object: "list",
          data: [
            { id: "openai/gpt-4o-mini", object: "model", created: 0, owned_by: "openai" },
            { id: "openai/gpt-4o", object: "model", created: 0, owned_by: "openai" }
          ]
        })
        expect((yield* Effect.promise(() => app.get("/v1/models"))).status).toBe(401)
        const openapi = yield* Effect.promise(() => app.get("/openapi.json").then((r) => r.json() as Promise<any>))
        expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(["/v1/chat/completions", "/v1/models"]))
      }))
  })

  layer(appLayer({ env: { ...gatewayEnv, CALLER_BUDGETS_MONTHLY_USD: "capped:1", LLM_CIRCUIT_THRESHOLD: "2", LLM_CIRCUIT_COOLDOWN_MS: "60000", LLM_MAX_RETRIES: "0" } }), liveBlock)("guards", (it) => {
    it.effect("a caller at its budget gets 402 budget_exceeded while others are served; an open circuit is 503 with Retry-After", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        yield* app.sql`INSERT INTO llm_api_usage (id, model, cost_usd, cost_source, status, caller)
          VALUES (gen_random_uuid(), 'openai/gpt-4o-mini', 1, 'provider', 'success', 'capped')`.pipe(Effect.orDie)
        const refused = yield* chat(app, userMessage("g"), bearer("capped"))
        expect(refused.status).toBe(402)
        expect(refused.json.error).toMatchObject({ code: "budget_exceeded", type: "insufficient_quota" })
        expect(refused.json.error.message).toContain("capped")
        expect(app.emulator.completionCount()).toBe(0)
        expect((yield* chat(app, userMessage("h"), bearer("chatbot"))).status).toBe(200)

        app.emulator.script({ kind: "status", status: 503 }, { kind: "status", status: 503 })
        expect((yield* chat(app, userMessage("i"))).status).toBe(502)
        expect((yield* chat(app, userMessage("j"))).status).toBe(502)
        const open = yield* chat(app, userMessage("k"))
        expect(open.status).toBe(503)
        expect(open.json.error.code).toBe("circuit_open")
        expect(Number(open.headers.get("retry-after"))).toBeGreaterThan(0)
      }))
  })
})

describe("POST /v1/chat/completions with stream: true", () => {
  layer(appLayer({ env: gatewayEnv, emulator: { generationDelayMs: 600 } }), liveBlock)("streams", (it) => {
    it.effect("passes the SSE through, comments included, asks upstream for usage, and writes the row with the exact cost", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const body = { ...userMessage("Stream me the summary"), stream: true, max_tokens: 200 }
        const reply = yield* chat(app, body)
        expect(reply.status).toBe(200)
        expect(reply.headers.get("content-type")).toContain("text/event-stream")
        expect(reply.text).toContain(": OPENROUTER PROCESSING")
        expect(reply.text.trimEnd().endsWith("data: [DONE]")).toBe(true)
        expect(app.emulator.calls[0]!.body.stream_options).toEqual({ include_usage: true })
        const chunks = sseChunks(reply.text)
        const expected = expectedUsage(body)
        expect(chunks.at(-1).usage.cost).toBe(Number(expected.cost))
        const [row] = yield* rowsWhen(app, 1)
        expect(row).toMatchObject({ status: "success", caller: "chatbot", cost_usd: expected.cost, cost_source: "provider", request_id: chunks[0].id })
      }))

    it.effect("a stream whose usage lacks the cost gets it from /generation, asked again while the record is not there yet", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        app.emulator.script({ kind: "no_cost" })
        const body = { ...userMessage("no cost please"), stream: true }
        const reply = yield* chat(app, body)
        expect(reply.status).toBe(200)
        const [row] = yield* rowsWhen(app, 1)
        expect(row).toMatchObject({ status: "success", cost_usd: expectedUsage({ ...body, max_tokens: 500 }).cost, cost_source: "provider" })
        expect(app.emulator.generationLookups()).toBeGreaterThan(1)
      }))

    it.effect("an error mid-stream (finish_reason error) is passed on and recorded as an error, not retried", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        app.emulator.script({ kind: "finish_error" })
        const reply = yield* chat(app, { ...userMessage("break"), stream: true })
        expect(reply.status).toBe(200)
        expect(sseChunks(reply.text).some((c) => c.choices?.[0]?.finish_reason === "error")).toBe(true)
        const rows = yield* rowsWhen(app, 1)
        expect(rows).toHaveLength(1)
        expect(rows[0]).toMatchObject({ status: "error", error_code: "502", caller: "chatbot" })
        expect(app.emulator.completionCount()).toBe(1)
      }))

    it.effect("failures before the first byte are retried, then answered as errors with a status", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        app.emulator.script({ kind: "status", status: 502 })
        const retried = yield* chat(app, { ...userMessage("retry me"), stream: true })
        expect(retried.status).toBe(200)
        expect(retried.text).toContain("data: [DONE]")
        app.emulator.script({ kind: "status", status: 400, message: "no" })
        const rejected = yield* chat(app, { ...userMessage("reject me"), stream: true })
        expect(rejected.status).toBe(400)
        expect(rejected.json.error.message).toBe("no")
        const rows = yield* rowsWhen(app, 3)
        expect(rows.map((r) => r.status)).toEqual(["error", "success", "error"])
      }))

    it.effect("a stream cut by upstream has its row, with the cost recovered through /generation", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        app.emulator.script({ kind: "cut_body" })
        const body = { ...userMessage("cut me"), stream: true }
        const reply = yield* chat(app, body)
        expect(reply.status).toBe(200)
        const rows = yield* rowsWhen(app, 1)
        expect(rows).toHaveLength(1)
        expect(rows[0]).toMatchObject({ status: "error", error_code: "stream_cut", cost_usd: expectedUsage({ ...body, max_tokens: 500 }).cost, cost_source: "provider" })
        expect(rows[0]!.request_id).toMatch(/^gen-/)
      }))
  })

  layer(appLayer({ env: gatewayEnv, emulator: { streamChunkDelayMs: 40 } }), liveBlock)("slow streams", (it) => {
    it.effect("chunks reach the caller as they arrive, and a stream the caller closes is recorded with its cost from /generation", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const controller = new AbortController()
        const firstChunkAt = yield* Effect.promise(async () => {
          const started = Date.now()
          const response = await fetch(`${app.url}/v1/chat/completions`, {
            method: "POST",
            headers: { ...bearer("chatbot"), "content-type": "application/json" },
            body: JSON.stringify({ ...userMessage("leave early"), stream: true }),
            signal: controller.signal
          })
          const reader = response.body!.getReader()
          await reader.read()
          const at = Date.now() - started
          controller.abort()
          return at
        })
        // The whole stream takes about 7 x 40 ms; the first chunk came long before its end.
        expect(firstChunkAt).toBeLessThan(200)
        const rows = yield* rowsWhen(app, 1)
        expect(rows[0]).toMatchObject({ status: "error", error_code: "client_closed", caller: "chatbot", cost_source: "provider" })
        expect(rows[0]!.cost_usd).not.toBeNull()
      }))
  })
})
