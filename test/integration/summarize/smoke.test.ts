import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { makeTestApp } from "../../support/TestApp.js"

const fixture = (name: string, file: string) =>
  readFileSync(new URL(`../../../../shared/fixtures/policy-changes/${name}/${file}`, import.meta.url), "utf8")

describe("POST /v1/summaries end to end", () => {
  it.scopedLive("summarizes a fixture with the emulator's usage and one ledger row", () =>
    Effect.gen(function*() {
      const app = yield* makeTestApp()
      const response = yield* Effect.promise(() => app.post("/v1/summaries", { diff: fixture("07-google-privacy-policy", "diff.patch") }))
      const body: any = yield* Effect.promise(() => response.json())
      expect(response.status).toBe(200)
      expect(body).toMatchObject({ status: "summarized", cached: false, attempts: 1, model: "openai/gpt-4o-mini", provider: "OpenAI" })
      expect(body.usage.costUsd).toBe(app.emulator.calls[0]!.usage!.cost)
      const rows = yield* app.sql<{ n: string }>`SELECT count(*) AS n FROM llm_api_usage`
      expect(rows[0]!.n).toBe("1")
    }))
})
