import { Effect } from "effect"
import type { TestApp } from "../../support/TestApp.js"

export const TOKENS = { default: "tok-default-5b1e0c9d", chatbot: "tok-chatbot-7f3a2e11", capped: "tok-capped-91c4d2b8" }
export const bearer = (name: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[name]}` })

export const gatewayEnv = {
  API_TOKEN: TOKENS.default,
  API_TOKENS: `chatbot:${TOKENS.chatbot},capped:${TOKENS.capped}`,
  OPENROUTER_ALLOWED_MODELS: "openai/gpt-4o-mini,openai/gpt-4o",
  LLM_MAX_RETRIES: "2",
  // Failures are scripted on purpose here; the circuit has its own test.
  LLM_CIRCUIT_THRESHOLD: "1000"
}

export const userMessage = (text: string) => ({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: text }] })

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: any
}

export const chat = (app: TestApp, body: unknown, headers: Record<string, string> = bearer("chatbot")): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const response = await app.post("/v1/chat/completions", body, headers)
    const text = await response.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json }
  })

export interface GatewayRow {
  readonly model: string
  readonly provider: string | null
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly cost_usd: string | null
  readonly cost_source: string
  readonly request_id: string | null
  readonly status: string
  readonly error_code: string | null
  readonly purpose: string | null
  readonly caller: string | null
  readonly attempt: number
}

export const gatewayRows = (app: TestApp) =>
  app.sql<GatewayRow>`
    SELECT model, provider, prompt_tokens, completion_tokens, cost_usd::text AS cost_usd, cost_source, request_id,
           status, error_code, purpose, caller, attempt
    FROM llm_api_usage ORDER BY created_at, id`.pipe(Effect.orDie)

/** Polls until the ledger holds `n` rows (a stream's row lands as it ends). */
export const rowsWhen = (app: TestApp, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 300; i++) {
      const rows = yield* gatewayRows(app)
      if (rows.length >= n) return rows
      yield* Effect.sleep("20 millis")
    }
    return yield* gatewayRows(app)
  })

export const resetLedger = (app: TestApp) =>
  app.sql`TRUNCATE llm_api_usage, llm_api_usage_daily, llm_api_usage_caller_daily, budget_reservations`.pipe(
    Effect.orDie,
    Effect.zipRight(Effect.sync(() => app.emulator.reset()))
  )

/** The data lines of an SSE text, parsed, `[DONE]` left out. */
export const sseChunks = (text: string): ReadonlyArray<any> =>
  text.split("\n").filter((l) => l.startsWith("data: ") && l !== "data: [DONE]").map((l) => JSON.parse(l.slice(6)))
