import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Redacted } from "effect"
import { availableParallelism } from "node:os"
import { load } from "../../../src/Config.js"

const withEnv = (env: Record<string, string>) =>
  load.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

describe("Config", () => {
  it.effect("defaults match DESIGN.md and a missing key means the AI is off, not an error", () =>
    Effect.gen(function*() {
      const config = yield* withEnv({})
      expect(config.openrouter).toMatchObject({
        baseUrl: "https://openrouter.ai/api/v1",
        defaultModel: "openai/gpt-4o-mini",
        allowedModels: ["openai/gpt-4o-mini"],
        temperature: 0.7,
        maxTokens: 500,
        timeoutMs: 60_000
      })
      expect(Option.isNone(config.openrouter.apiKey)).toBe(true)
      expect(config.llm).toMatchObject({ maxRetries: 3, retryBaseMs: 1000, aiEnabled: true })
      expect(config.rateLimit).toMatchObject({ requests: 60, windowMs: 60_000, maxConcurrency: 8, queueMax: 1000 })
      expect(config.server).toMatchObject({ host: "127.0.0.1", port: 8080, maxInputBytes: 2_097_152 })
    }))

  it.effect("SUMMARY_MAX_PARTS defaults to 8 and CHANGE_WORKERS to the cores but one; both are checked", () =>
    Effect.gen(function*() {
      const config = yield* withEnv({})
      expect(config.summary.maxParts).toBe(8)
      expect(config.summary.changeWorkers).toBe(Math.max(1, availableParallelism() - 1))
      expect((yield* withEnv({ SUMMARY_MAX_PARTS: "3", CHANGE_WORKERS: "0" })).summary).toMatchObject({ maxParts: 3, changeWorkers: 0 })
      const error = yield* Effect.flip(withEnv({ SUMMARY_MAX_PARTS: "1", CHANGE_WORKERS: "many" }))
      expect(error.problems).toEqual([
        `SUMMARY_MAX_PARTS: got "1": expected a whole number from 2 to 1000`,
        `CHANGE_WORKERS: got "many": expected a whole number from 0 to 64`
      ])
    }))

  it.effect("reports every bad variable at once, each with its problem and expected form", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withEnv({ OPENROUTER_TEMPERATURE: "hot", PORT: "99999", LLM_MAX_RETRIES: "-1" }))
      expect(error.problems).toEqual([
        `OPENROUTER_TEMPERATURE: got "hot": expected a number from 0 to 2`,
        `LLM_MAX_RETRIES: got "-1": expected a whole number from 0 to 10`,
        `PORT: got "99999": expected a whole number from 0 to 65535`
      ])
      expect(error.message).toContain("3 problems")
    }))

  it.effect("never echoes a secret in an error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withEnv({ DATABASE_URL: "mysql://user:hunter2@db/x" }))
      expect(error.message).not.toContain("hunter2")
      expect(error.message).toContain("DATABASE_URL")
    }))

  it.effect("keeps the key redacted", () =>
    Effect.gen(function*() {
      const config = yield* withEnv({ OPENROUTER_API_KEY: "sk-or-v1-secret" })
      expect(String(config.openrouter.apiKey)).not.toContain("sk-or-v1-secret")
      expect(Option.map(config.openrouter.apiKey, Redacted.value)).toEqual(Option.some("sk-or-v1-secret"))
    }))

  it.effect("refuses a non-loopback HOST without API_TOKEN", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withEnv({ HOST: "0.0.0.0" }))
      expect(error.problems[0]).toMatch(/^API_TOKEN: required when HOST is not a loopback address/)
      const ok = yield* withEnv({ HOST: "0.0.0.0", API_TOKEN: "t" })
      expect(ok.server.host).toBe("0.0.0.0")
    }))

  it.effect("the allowed models default to the default and fallback models", () =>
    Effect.gen(function*() {
      const config = yield* withEnv({ OPENROUTER_FALLBACK_MODELS: "anthropic/claude-3.5-sonnet, meta-llama/llama-3.1-8b-instruct" })
      expect(config.openrouter.allowedModels).toEqual(["openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet", "meta-llama/llama-3.1-8b-instruct"])
    }))
})
