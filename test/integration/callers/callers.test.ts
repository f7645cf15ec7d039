import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { expectedCost } from "../../support/OpenRouterEmulator.js"
import { App, appLayer, getText, liveBlock, smallDiff, summarize } from "../summarize/support.js"

const TOKENS = { default: "tok-default-5b1e0c9d", reports: "tok-reports-7f3a2e11", capped: "tok-capped-91c4d2b8" }
const bearer = (name: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[name]}` })

const rowsOf = (app: App["Type"]) =>
  app.sql<{ caller: string | null; cost_usd: string | null; status: string; id: string; request_id: string | null }>`
    SELECT caller, cost_usd::text AS cost_usd, status, id::text AS id, request_id FROM llm_api_usage ORDER BY created_at, id`.pipe(Effect.orDie)

const json = (app: App["Type"], path: string, name: keyof typeof TOKENS = "default") =>
  Effect.promise(() => app.get(path, bearer(name)).then(async (r) => ({ status: r.status, body: await r.json() as any })))

describe("callers", () => {
  layer(
    appLayer({
      env: {
        API_TOKEN: TOKENS.default,
        API_TOKENS: `reports:${TOKENS.reports},capped:${TOKENS.capped}`,
        CALLER_BUDGETS_MONTHLY_USD: "capped:1",
        LOG_LEVEL: "debug"
      }
    }),
    liveBlock
  )("named tokens", (it) => {
    it.effect("each summary's ledger row names its caller; a wrong or missing token is 401 and leaves no row", () =>
      Effect.gen(function*() {
        const app = yield* App
        const first = yield* summarize(app, { diff: smallDiff("We keep your data for 60 days.") }, bearer("reports"))
        const second = yield* summarize(app, { diff: smallDiff("We keep your data for 61 days.") }, bearer("default"))
        expect([first.status, second.status]).toEqual([200, 200])
        expect([first.body.status, second.body.status]).toEqual(["summarized", "summarized"])
        for (const headers of [{ authorization: "Bearer tok-nobody-00000000" }, {}]) {
          const refused = yield* summarize(app, { diff: smallDiff("We keep your data for 62 days.") }, headers)
          expect(refused.status).toBe(401)
          expect(JSON.stringify(refused.body)).not.toContain("tok-")
        }
        const rows = yield* rowsOf(app)
        expect(rows.map((r) => r.caller)).toEqual(["reports", "default"])
        expect(rows.map((r) => r.cost_usd)).toEqual([first.body.usage.costUsd, second.body.usage.costUsd])
      }))

    it.effect("GET /v1/usage?groupBy=caller gives each caller's calls, tokens and exact cost, adding up to the other groupings", () =>
      Effect.gen(function*() {
        const app = yield* App
        // An older row, written before callers existed, counts under `(none)`.
        yield* app.sql`INSERT INTO llm_api_usage (id, model, cost_usd, cost_source, status, prompt_tokens, completion_tokens, total_tokens)
          VALUES (gen_random_uuid(), 'openai/gpt-4o-mini', ${expectedCost("openai/gpt-4o-mini", 10, 10)}::numeric, 'provider', 'error', 10, 10, 20)`.pipe(Effect.orDie)
        const byCaller = yield* json(app, "/v1/usage?groupBy=caller")
        const byModel = yield* json(app, "/v1/usage?groupBy=model")
        expect(byCaller.status).toBe(200)
        expect(byCaller.body.groupBy).toBe("caller")
        expect(byCaller.body.groups.map((g: any) => [g.key, g.calls, g.failedCalls])).toEqual([["(none)", 1, 1], ["default", 1, 0], ["reports", 1, 0]])
        expect(byCaller.body.total).toEqual(byModel.body.total)
        const rows = yield* rowsOf(app)
        const reports = byCaller.body.groups.find((g: any) => g.key === "reports")
        expect(reports.costUsd).toBe(rows.find((r) => r.caller === "reports")!.cost_usd)
        expect(Object.keys(reports).sort()).toEqual(Object.keys(byModel.body.groups[0]).sort())
      }))

    it.effect("GET /v1/usage/calls?caller= lists only that caller's calls, each naming its caller", () =>
      Effect.gen(function*() {
        const app = yield* App
        const page = yield* json(app, "/v1/usage/calls?caller=reports")
        expect(page.status).toBe(200)
        expect(page.body.calls.map((c: any) => c.caller)).toEqual(["reports"])
        const none = yield* json(app, "/v1/usage/calls?caller=nobody")
        expect(none.body.calls).toEqual([])
        const bad = yield* json(app, "/v1/usage/calls?caller=a%20b")
        expect(bad.status).toBe(400)
      }))

    it.effect("a caller at its own monthly cap gets budget_exceeded on summaries without an upstream call; the others go on", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* app.sql`INSERT INTO llm_api_usage (id, model, cost_usd, cost_source, status, caller)
          VALUES (gen_random_uuid(), 'openai/gpt-4o-mini', 1, 'provider', 'success', 'capped')`.pipe(Effect.orDie)
        const before = app.emulator.completionCount()
        const refused = yield* summarize(app, { diff: smallDiff("We keep your data for 63 days.") }, bearer("capped"))
        expect(refused.body).toMatchObject({ status: "fallback", fallbackReason: "budget_exceeded" })
        expect(app.emulator.completionCount()).toBe(before)
        const other = yield* summarize(app, { diff: smallDiff("We keep your data for 64 days.") }, bearer("reports"))
        expect(other.body).toMatchObject({ status: "summarized" })
        const usage = yield* json(app, "/v1/usage")
        expect(usage.body.budgets).toEqual([expect.objectContaining({ caller: "capped", kind: "hard", budget: "monthly", limitUsd: "1", spentUsd: "1" })])
      }))

    it.effect("no token appears in the ledger, the usage answers or the metrics", () =>
      Effect.gen(function*() {
        const app = yield* App
        const dump = yield* app.sql<{ row: string }>`SELECT row_to_json(u)::text AS row FROM llm_api_usage u`.pipe(Effect.orDie)
        const texts = [
          ...dump.map((d) => d.row),
          JSON.stringify((yield* json(app, "/v1/usage/calls?limit=500")).body),
          JSON.stringify((yield* json(app, "/v1/usage?groupBy=caller")).body),
          yield* getText(app, "/metrics")
        ]
        for (const text of texts) for (const token of Object.values(TOKENS)) expect(text).not.toContain(token)
      }))
  })
})
