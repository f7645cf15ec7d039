import { createOpenAICompatible } from "@ai-sdk/openai-compatible"
import { createOpenRouter } from "@openrouter/ai-sdk-provider"
import { describe, expect, layer } from "@effect/vitest"
import { generateText, type LanguageModel, streamText } from "ai"
import { Effect } from "effect"
import OpenAI, { APIError, BadRequestError, InternalServerError, RateLimitError } from "openai"
import type { TestApp } from "../../support/TestApp.js"
import { App, appLayer, liveBlock } from "../summarize/support.js"
import { gatewayEnv, resetLedger, rowsWhen, TOKENS } from "./support.js"

const openai = (app: TestApp, token = TOKENS.chatbot) => new OpenAI({ baseURL: `${app.url}/v1`, apiKey: token, maxRetries: 0 })

/** Each emulator generation's exact cost against the row of the same request id: every call billed exactly, by caller. */
const expectExactRows = (app: TestApp, caller: string) =>
  Effect.gen(function*() {
    const billed = app.emulator.calls.filter((c) => c.generationId !== undefined)
    expect(billed.length).toBeGreaterThan(0)
    const rows = yield* rowsWhen(app, billed.length)
    expect(rows).toHaveLength(billed.length)
    for (const call of billed) {
      const row = rows.find((r) => r.request_id === call.generationId)
      expect(row).toMatchObject({ caller, cost_usd: call.usage!.cost, cost_source: "provider" })
    }
  })

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

describe("real OpenAI clients against the service", () => {
  layer(appLayer({ env: { ...gatewayEnv, CALLER_BUDGETS_MONTHLY_USD: "capped:1" } }), liveBlock)("openai SDK 6", (it) => {
    it.effect("chat.completions.create: the text, the usage with its cost, and the row", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const completion = yield* promise(() =>
          openai(app).chat.completions.create({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "Summarize the change" }], max_tokens: 200 })
        )
        expect(completion.choices[0]!.message.content).toMatch(/^Summary: [0-9a-f]{8}\. /)
        const call = app.emulator.calls[0]!
        expect(completion.usage).toMatchObject({ prompt_tokens: call.usage!.prompt_tokens, completion_tokens: call.usage!.completion_tokens })
        expect((completion.usage as unknown as { cost: number }).cost).toBe(Number(call.usage!.cost))
        yield* expectExactRows(app, "chatbot")
      }))

    it.effect("streaming with stream_options.include_usage: the deltas make the text and the last chunk has the usage", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const { text, usage } = yield* promise(async () => {
          const stream = await openai(app).chat.completions.create({
            model: "openai/gpt-4o-mini",
            messages: [{ role: "user", content: "Stream the summary" }],
            stream: true,
            stream_options: { include_usage: true }
          })
          let text = ""
          let usage: OpenAI.CompletionUsage | undefined
          for await (const chunk of stream) {
            text += chunk.choices[0]?.delta?.content ?? ""
            if (chunk.usage) usage = chunk.usage
          }
          return { text, usage }
        })
        expect(text).toMatch(/^Summary: [0-9a-f]{8}\. /)
        expect(usage?.total_tokens).toBe(app.emulator.calls[0]!.usage!.total_tokens)
        yield* expectExactRows(app, "chatbot")
      }))

    it.effect("a stream cut mid-way fails in the SDK and still has its row, with the cost recovered through /generation", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        app.emulator.script({ kind: "cut_body" })
        const outcome = yield* promise(async () => {
          try {
            const stream = await openai(app).chat.completions.create({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "Cut" }], stream: true })
            for await (const _ of stream) void _
            return "ended"
          } catch (error) {
            return error instanceof Error ? error.name : "thrown"
          }
        })
        expect(outcome).not.toBe("thrown")
        const [row] = yield* rowsWhen(app, 1)
        expect(row).toMatchObject({ status: "error", error_code: "stream_cut", caller: "chatbot", cost_usd: app.emulator.calls[0]!.usage!.cost })
      }))

    it.effect("typed errors: BadRequestError for a model not allowed, APIError 402 budget_exceeded for a caller at its cap", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const bad = yield* promise(() =>
          openai(app).chat.completions.create({ model: "anthropic/claude-3-opus", messages: [{ role: "user", content: "x" }] }).then(() => undefined, (e: unknown) => e)
        )
        expect(bad).toBeInstanceOf(BadRequestError)
        expect((bad as BadRequestError).param).toBe("model")

        yield* app.sql`INSERT INTO llm_api_usage (id, model, cost_usd, cost_source, status, caller)
          VALUES (gen_random_uuid(), 'openai/gpt-4o-mini', 1, 'provider', 'success', 'capped')`.pipe(Effect.orDie)
        const broke = yield* promise(() =>
          openai(app, TOKENS.capped).chat.completions.create({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "x" }] }).then(() => undefined, (e: unknown) => e)
        )
        expect(broke).toBeInstanceOf(APIError)
        expect(broke).toMatchObject({ status: 402, code: "budget_exceeded", type: "insufficient_quota" })
      }))
  })

  layer(appLayer({ env: { ...gatewayEnv, LLM_MAX_RETRIES: "0", LLM_CIRCUIT_THRESHOLD: "2", LLM_CIRCUIT_COOLDOWN_MS: "60000" } }), liveBlock)("openai SDK 6 errors", (it) => {
    it.effect("typed errors: RateLimitError with Retry-After for a provider 429, InternalServerError 503 once the circuit opens", () =>
      Effect.gen(function*() {
        const app = yield* App
        const create = () =>
          openai(app).chat.completions.create({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "x" }] }).then(() => undefined, (e: unknown) => e)
        app.emulator.script({ kind: "rate_limited", retryAfterSeconds: 3 })
        const limited = yield* promise(create)
        expect(limited).toBeInstanceOf(RateLimitError)
        expect((limited as RateLimitError).headers?.get("retry-after")).toBe("3")

        app.emulator.script({ kind: "status", status: 500 })
        const failed = yield* promise(create)
        expect(failed).toMatchObject({ status: 502 })
        const open = yield* promise(create)
        expect(open).toBeInstanceOf(InternalServerError)
        expect(open).toMatchObject({ status: 503, code: "circuit_open" })
      }))
  })

  layer(appLayer({ env: gatewayEnv }), liveBlock)("Vercel AI SDK 5 and the OpenRouter provider", (it) => {
    const compatible = (app: TestApp) =>
      createOpenAICompatible({ name: "policy-summarizer", baseURL: `${app.url}/v1`, apiKey: TOKENS.default, includeUsage: true })

    it.effect("generateText through @ai-sdk/openai-compatible", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const result = yield* promise(() => generateText({ model: compatible(app)("openai/gpt-4o-mini"), prompt: "What changed?", maxRetries: 0 }))
        expect(result.text).toMatch(/^Summary: [0-9a-f]{8}\. /)
        expect(result.usage.totalTokens).toBe(app.emulator.calls[0]!.usage!.total_tokens)
        yield* expectExactRows(app, "default")
      }))

    it.effect("streamText through @ai-sdk/openai-compatible", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const { text, usage } = yield* promise(async () => {
          const result = streamText({ model: compatible(app)("openai/gpt-4o-mini"), prompt: "Stream what changed", maxRetries: 0 })
          let text = ""
          for await (const part of result.textStream) text += part
          return { text, usage: await result.usage }
        })
        expect(text).toMatch(/^Summary: [0-9a-f]{8}\. /)
        expect(usage.totalTokens).toBe(app.emulator.calls[0]!.usage!.total_tokens)
        yield* expectExactRows(app, "default")
      }))

    it.effect("generateText and streamText through @openrouter/ai-sdk-provider pointed at the service", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* resetLedger(app)
        const provider = createOpenRouter({ baseURL: `${app.url}/v1`, apiKey: TOKENS.chatbot })
        // The provider's declared metadata type trips exactOptionalPropertyTypes only; at run time it is an AI SDK 5 model.
        const model = provider.chat("openai/gpt-4o-mini") as unknown as LanguageModel
        const generated = yield* promise(() => generateText({ model, prompt: "What changed?", maxRetries: 0 }))
        expect(generated.text).toMatch(/^Summary: [0-9a-f]{8}\. /)
        const streamed = yield* promise(async () => {
          const result = streamText({ model, prompt: "Stream it", maxRetries: 0 })
          let text = ""
          for await (const part of result.textStream) text += part
          return text
        })
        expect(streamed).toMatch(/^Summary: [0-9a-f]{8}\. /)
        yield* expectExactRows(app, "chatbot")
      }))
  })
})
