import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { makeEmulator } from "../../support/OpenRouterEmulator.js"
import { startService } from "../../support/ServiceProcess.js"
import { createDatabase } from "../../support/TestDatabase.js"
import { smallDiff } from "../summarize/support.js"

const TOKENS = { default: "tok-default-log-6c2f8a", reports: "tok-reports-log-19d7e3", capped: "tok-capped-log-44b0c1" }

describe("tokens in the logs", () => {
  it.live("a debug-level log of accepted, refused and budget-capped requests holds caller names, never a token", () =>
    Effect.scoped(Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const db = yield* createDatabase("caller_logs")
      const dataDir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "caller-logs-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      const service = yield* startService({
        DATABASE_URL: Redacted.value(db.url),
        OPENROUTER_BASE_URL: emulator.baseUrl,
        OPENROUTER_API_KEY: "sk-or-v1-test-key-logs",
        DATA_DIR: dataDir,
        LOG_LEVEL: "debug",
        API_TOKEN: TOKENS.default,
        API_TOKENS: `reports:${TOKENS.reports},capped:${TOKENS.capped}`,
        CALLER_BUDGETS_MONTHLY_USD: "capped:0.000001"
      }, { readyTimeout: "100 seconds" })
      const post = (path: string, token: string, body: unknown) =>
        Effect.promise(() =>
          fetch(`${service.url}${path}`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: JSON.stringify(body)
          }).then((r) => r.status)
        )
      const chat = { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }
      expect(yield* post("/v1/summaries", TOKENS.reports, { diff: smallDiff("We keep your data for 70 days.") })).toBe(200)
      expect(yield* post("/v1/chat/completions", TOKENS.default, chat)).toBe(200)
      expect(yield* post("/v1/chat/completions", TOKENS.capped, chat)).toBe(402)
      expect(yield* post("/v1/chat/completions", `${TOKENS.reports}x`, chat)).toBe(401)
      const lines = service.lines()
      expect(lines.some((l) => l.includes("caller=capped") || l.includes("\"caller\":\"capped\""))).toBe(true)
      for (const token of Object.values(TOKENS)) expect(lines.filter((l) => l.includes(token))).toEqual([])
    })), 150_000)
})
