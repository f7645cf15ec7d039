import { Context, Effect, Layer } from "effect"
import type { EmulatorOptions } from "../../support/OpenRouterEmulator.js"
import type { TestApp } from "../../support/TestApp.js"
import { makeTestApp } from "../../support/TestApp.js"

/** One running service (emulator and database included) shared by the tests of a block. */
export class App extends Context.Tag("test/summarize/App")<App, TestApp>() {}

export const appLayer = (options: { readonly env?: Record<string, string>; readonly emulator?: EmulatorOptions } = {}) =>
  Layer.scoped(App, makeTestApp(options))

/**
 * Block options for `layer(...)`: the service runs on real time, so no TestClock anywhere near it.
 * Inside such a block `it.effect` runs on the live clock with the block's layer (`it.live` would not see the layer).
 */
export const liveBlock = { excludeTestServices: true, timeout: "60 seconds" } as const

export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

const answer = (response: Response): Promise<Answer> =>
  response.text().then((text) => {
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // Not JSON: the test sees the text as it came.
    }
    return { status: response.status, headers: response.headers, body }
  })

/** `POST /v1/summaries`, answered with its status, headers and decoded body. */
export const summarize = (app: TestApp, body: unknown, headers: Record<string, string> = {}): Effect.Effect<Answer> =>
  Effect.promise(() => app.post("/v1/summaries", body, headers).then(answer))

export const getText = (app: TestApp, path: string): Effect.Effect<string> =>
  Effect.promise(() => app.get(path).then((r) => r.text()))

export interface LedgerRow {
  readonly model: string
  readonly provider: string | null
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly total_tokens: number
  readonly cost_usd: string | null
  readonly request_id: string | null
  readonly status: string
  readonly error_code: string | null
  readonly purpose: string | null
}

/** Every ledger row, oldest first; cost as exact decimal text. */
export const ledgerRows = (app: TestApp) =>
  app.sql<LedgerRow>`
    SELECT model, provider, prompt_tokens, completion_tokens, total_tokens, cost_usd::text AS cost_usd,
           request_id, status, error_code, purpose
    FROM llm_api_usage ORDER BY created_at, id
  `.pipe(Effect.orDie)

export const ledgerCount = (app: TestApp) => Effect.map(ledgerRows(app), (rows) => rows.length)

/** The value of one Prometheus sample (0 when absent), e.g. `summaries_total{outcome="fallback",reason="ai_disabled"}`. */
export const metricValue = (text: string, name: string, labels: Record<string, string>): number => {
  const wanted = Object.entries(labels)
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const labelText = line.slice(name.length).split(" ")[0] ?? ""
    if (wanted.every(([k, v]) => labelText.includes(`${k}="${v}"`))) return Number(line.split(" ").pop())
  }
  return 0
}

/** A small, valid unified diff whose added line is `added`; distinct `added` texts make distinct changes. */
export const smallDiff = (added: string, removed = "We keep your data for 30 days.") =>
  [
    "--- a/policy.md",
    "+++ b/policy.md",
    "@@ -1,3 +1,3 @@",
    " # Data retention",
    `-${removed}`,
    `+${added}`,
    " Contact us with questions.",
    ""
  ].join("\n")
