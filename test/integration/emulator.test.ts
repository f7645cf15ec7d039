import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import OpenAI, { APIConnectionError, InternalServerError, NotFoundError, RateLimitError } from "openai"
import { afterAll, beforeAll, beforeEach } from "vitest"
import {
  type Emulator,
  expectedCost,
  expectedUsage,
  makeEmulator,
  startEmulator
} from "../support/OpenRouterEmulator.js"

const KEY = "sk-or-v1-test"
// 100 characters + 4 per message = 29 prompt tokens; the summary is 33 tokens: the wire doc's example.
const request = { model: "openai/gpt-4o-mini", messages: [{ role: "user" as const, content: "x".repeat(100) }] }

let emulator: Emulator
let client: OpenAI

beforeAll(async () => {
  emulator = await startEmulator()
  client = new OpenAI({ apiKey: KEY, baseURL: emulator.baseUrl, maxRetries: 0 })
})
afterAll(() => emulator.close())
beforeEach(() => emulator.reset())

const post = (body: unknown, init: RequestInit = {}) =>
  fetch(`${emulator.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init
  })

describe("OpenRouterEmulator", () => {
  it("serves the wire doc's success shape, with the generation id in a header", async () => {
    const { data, response } = await client.chat.completions
      .create(request, { headers: { "HTTP-Referer": "https://policy.example", "X-Title": "policy-summarizer" } })
      .withResponse()
    expect(data.id).toMatch(/^gen-\d{10}-[A-Za-z0-9]{20}$/)
    expect(response.headers.get("x-generation-id")).toBe(data.id)
    expect(data).toMatchObject({
      provider: "OpenAI",
      model: "openai/gpt-4o-mini",
      choices: [{ finish_reason: "stop", native_finish_reason: "stop", message: { role: "assistant" } }],
      usage: { prompt_tokens: 29, completion_tokens: 33, total_tokens: 62, cost: 0.00002415, is_byok: false }
    })
    expect(emulator.calls).toMatchObject([
      {
        outcome: "success",
        status: 200,
        generationId: data.id,
        headers: { "http-referer": "https://policy.example", "x-title": "policy-summarizer" },
        usage: { cost: "0.00002415" }
      }
    ])
    const billed = await fetch(`${emulator.baseUrl}/generation?id=${data.id}`, {
      headers: { authorization: `Bearer ${KEY}` }
    })
    expect(await billed.text()).toContain('"tokens_prompt":29,"tokens_completion":33,')
  })

  it("writes cost as exact decimal text, never a rounded float or an exponent", async () => {
    // In floats, 1 x 0.15/M + 4 x 0.60/M is 0.0000025499999999999997.
    expect(expectedCost("openai/gpt-4o-mini", 1, 4)).toBe("0.00000255")
    const llama = { ...request, model: "meta-llama/llama-3.1-8b-instruct" }
    const raw = await (await post(llama)).text()
    expect(raw).toContain(`"cost":${expectedUsage(llama).cost},`)
    expect(raw).not.toMatch(/\de-\d/)
  })

  it("caps completion tokens at max_tokens and serves the first priced model of a fallback list", async () => {
    const data = await client.chat.completions.create({
      ...request,
      model: "nobody/nothing",
      models: ["nobody/else", "anthropic/claude-3.5-sonnet"],
      max_tokens: 20
    } as OpenAI.ChatCompletionCreateParamsNonStreaming)
    expect(data).toMatchObject({ model: "anthropic/claude-3.5-sonnet", provider: "Anthropic" })
    expect(data.choices[0]?.finish_reason).toBe("length")
    expect(data.usage?.completion_tokens).toBe(20)
    const unknown = client.chat.completions.create({ ...request, model: "nobody/nothing" })
    await expect(unknown).rejects.toBeInstanceOf(NotFoundError)
    await expect(unknown).rejects.toMatchObject({ error: { message: "No endpoints found for nobody/nothing." } })
  })

  it("answers 429 with the reset as Unix ms in headers and in body metadata", async () => {
    emulator.script({ kind: "rate_limited", retryAfterSeconds: 2, resetInMs: 5_000 }, { kind: "daily_quota" })
    const before = Date.now()
    const error = await client.chat.completions.create(request).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RateLimitError)
    const { error: body, headers } = error as RateLimitError
    const reset = Number(headers.get("x-ratelimit-reset"))
    expect(reset).toBeGreaterThanOrEqual(before + 5_000)
    expect(reset).toBeLessThanOrEqual(Date.now() + 5_000)
    expect(headers.get("retry-after")).toBe("2")
    expect(body).toMatchObject({
      code: 429,
      metadata: { headers: { "X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": String(reset) } }
    })

    const daily = await post(request)
    const midnight = new Date()
    midnight.setUTCHours(24, 0, 0, 0)
    expect(daily.headers.get("x-ratelimit-reset")).toBe(String(midnight.getTime()))
    expect(daily.headers.has("retry-after")).toBe(false)
    expect(await daily.json()).toMatchObject({ error: { message: expect.stringContaining("free-models-per-day") } })
  })

  it("plays a script in order, then succeeds", async () => {
    emulator.script({ kind: "status", status: 500 })
    await expect(client.chat.completions.create(request)).rejects.toBeInstanceOf(InternalServerError)
    await expect(client.chat.completions.create(request)).resolves.toMatchObject({ usage: { total_tokens: 62 } })
    expect(emulator.calls.map((c) => [c.outcome, c.status])).toEqual([["status", 500], ["success", 200]])
    expect([emulator.completionCount(), emulator.injectedFaults()]).toEqual([2, 1])
  })

  it("sends the 200 failures that the SDK takes for successes", async () => {
    emulator.script({ kind: "error_in_200" }, { kind: "finish_error" })
    const inBody = await client.chat.completions.create(request)
    expect(inBody.choices).toBeUndefined()
    expect(inBody).toMatchObject({ error: { code: 502 } })
    const finished = await client.chat.completions.create(request)
    expect(finished.choices[0]).toMatchObject({ finish_reason: "error", message: { content: "" }, error: { code: 502 } })
  })

  it("turns drop and cut_body into connection errors, and survives a client leaving during a delay", async () => {
    emulator.script({ kind: "drop" }, { kind: "cut_body" }, { kind: "delay", ms: 150 })
    await expect(client.chat.completions.create(request)).rejects.toBeInstanceOf(APIConnectionError)
    const cut = await post(request)
    expect(Number(cut.headers.get("content-length"))).toBeGreaterThan(0)
    await expect(cut.text()).rejects.toThrow()
    await expect(post(request, { signal: AbortSignal.timeout(30) })).rejects.toThrow()
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect((await post(request)).status).toBe(200)
    expect(emulator.calls.map((c) => [c.outcome, c.status])).toEqual([
      ["drop", 0],
      ["cut_body", 200],
      ["delay", 0],
      ["success", 200]
    ])
  })

  it("replays the same random failures for the same seed", async () => {
    const run = async () => {
      emulator.reset()
      emulator.failRandomly(0.3, [{ kind: "status", status: 502 }, { kind: "rate_limited" }], 42)
      for (let i = 0; i < 30; i++) await post(request)
      return emulator.calls.map((c) => c.outcome)
    }
    const first = await run()
    expect(await run()).toEqual(first)
    expect(new Set(first)).toEqual(new Set(["success", "status", "rate_limited"]))
    expect(emulator.injectedFaults()).toBe(first.filter((o) => o !== "success").length)
  })

  it("streams with processing comments and usage with cost in a last chunk without choices", async () => {
    const raw = await (await post({ ...request, stream: true })).text()
    expect(raw.startsWith(": OPENROUTER PROCESSING\n\n")).toBe(true)
    expect(raw.endsWith("data: [DONE]\n\n")).toBe(true)

    const chunks: Array<OpenAI.ChatCompletionChunk> = []
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) chunks.push(chunk)
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop")
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: 62, cost: 0.00002415 } })
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toHaveLength(132)
  })

  it("requires a bearer key on completions and /key", async () => {
    const anonymous = await post(request, { headers: { "content-type": "application/json" } })
    expect(anonymous.status).toBe(401)
    expect(await anonymous.text()).toBe('{"error":{"code":401,"message":"No auth credentials found"}}')
    expect((await fetch(`${emulator.baseUrl}/key`)).status).toBe(401)

    const key = await fetch(`${emulator.baseUrl}/key`, { headers: { authorization: `Bearer ${KEY}` } })
    expect(await key.json()).toMatchObject({ data: { limit: null, usage: 0, is_free_tier: false } })
    expect(emulator.keyCalls()).toBe(2)
  })

  it("lists models with string prices, and fails /models on demand", async () => {
    const models = (await (await fetch(`${emulator.baseUrl}/models`)).json()) as { data: Array<{ id: string }> }
    expect(models.data.find((m) => m.id === "openai/gpt-4o-mini")).toMatchObject({
      context_length: 128_000,
      pricing: { prompt: "0.00000015", completion: "0.0000006", request: "0" }
    })
    emulator.modelsFault({ kind: "status", status: 500 })
    expect((await fetch(`${emulator.baseUrl}/models`)).status).toBe(500)
    expect(emulator.modelsCalls()).toBe(2)
  })

  it.effect("is a scoped resource: a revoked key gets 401 and the port closes with the scope", () =>
    Effect.gen(function* () {
      const port = yield* Effect.scoped(
        Effect.gen(function* () {
          const revoked = yield* makeEmulator({ keyInfo: { valid: false } })
          const key = yield* Effect.promise(() =>
            fetch(`${revoked.baseUrl}/key`, { headers: { authorization: `Bearer ${KEY}` } })
          )
          expect(key.status).toBe(401)
          return revoked.port
        })
      )
      const after = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/api/v1/models`).then(
          () => "open",
          () => "closed"
        )
      )
      expect(after).toBe("closed")
    })
  )
})
