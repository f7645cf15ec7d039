import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, ConfigProvider, Effect, LogLevel, Option, Redacted } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
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

  it.effect("callers come from API_TOKEN (default), API_TOKENS and API_TOKENS_FILE, each name and token once", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(Path.join(tmpdir(), "tokens-"))
      const file = Path.join(dir, "tokens")
      writeFileSync(file, "# the batch workers\nextractor:tok-extractor-777\n\nqa : tok-qa-888\n")
      const config = yield* withEnv({ API_TOKEN: "tok-default-000", API_TOKENS: "reports:tok-reports-111, classifier:tok:with:colons", API_TOKENS_FILE: file, CALLER_BUDGETS_MONTHLY_USD: "reports:25,qa:5.50" })
      expect(config.server.callers.map((c) => [c.name, Redacted.value(c.token)])).toEqual([
        ["default", "tok-default-000"],
        ["reports", "tok-reports-111"],
        ["classifier", "tok:with:colons"],
        ["extractor", "tok-extractor-777"],
        ["qa", "tok-qa-888"]
      ])
      expect([...config.budget.callerMonthlyUsd].map(([n, d]) => [n, BigDecimal.format(d)])).toEqual([["reports", "25"], ["qa", "5.5"]])
      rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("a bad caller setting names the variable and the entry, never the token", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withEnv({
        API_TOKEN: "tok-shared-secret",
        API_TOKENS: "default:tok-other-secret,bad name:tok-bad-secret",
        CALLER_BUDGETS_MONTHLY_USD: "reports:ten"
      }))
      expect(error.problems).toEqual([
        `API_TOKENS: entry 2 (a bad name): the name must be letters, digits, "_", "." or "-" (up to 100): expected name:token pairs such as reports:tok_123,classifier:tok_456`,
        `CALLER_BUDGETS_MONTHLY_USD: "reports:ten": got "ten": expected a positive decimal number such as 25 or 12.50`
      ])
      const clash = yield* Effect.flip(withEnv({ API_TOKEN: "tok-shared-secret", API_TOKENS: "default:tok-other-secret,ops:tok-shared-secret" }))
      expect(clash.problems).toEqual([
        `API_TOKENS: the caller name "default" is already taken (by API_TOKEN): expected each name once`,
        `API_TOKENS: the token of "ops" is also another caller's: expected a distinct token per caller`
      ])
      const unknown = yield* Effect.flip(withEnv({ API_TOKENS: "ops:tok-ops-secret", CALLER_BUDGETS_MONTHLY_USD: "nobody:1" }))
      expect(unknown.problems).toEqual([
        `CALLER_BUDGETS_MONTHLY_USD: names "nobody", which is no caller of API_TOKENS, API_TOKENS_FILE or API_TOKEN (default): expected known caller names`
      ])
      for (const e of [error, clash]) expect(e.message).not.toMatch(/secret/)
      const missing = yield* Effect.flip(withEnv({ API_TOKENS_FILE: "/nonexistent/tokens" }))
      expect(missing.problems).toEqual([`API_TOKENS_FILE: cannot read "/nonexistent/tokens": expected a readable file of name:token lines`])
    }))

  it.effect("named tokens alone are enough to listen beyond loopback", () =>
    Effect.gen(function*() {
      const config = yield* withEnv({ HOST: "0.0.0.0", API_TOKENS: "reports:tok-reports-111" })
      expect(config.server.callers.map((c) => c.name)).toEqual(["reports"])
      const error = yield* Effect.flip(withEnv({ HOST: "0.0.0.0" }))
      expect(error.problems[0]).toContain("API_TOKEN: required when HOST is not a loopback address")
    }))

  it.effect("LOG_LEVEL takes the spellings people use: warn, err, upper case", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, LogLevel.LogLevel]> = [
        ["warn", LogLevel.Warning],
        ["WARN", LogLevel.Warning],
        ["Warning", LogLevel.Warning],
        ["err", LogLevel.Error],
        ["ERROR", LogLevel.Error],
        ["DEBUG", LogLevel.Debug],
        ["Info", LogLevel.Info],
        ["off", LogLevel.None]
      ]
      for (const [text, level] of cases) {
        const config = yield* withEnv({ LOG_LEVEL: text })
        expect(config.log.level, text).toEqual(level)
      }
      const error = yield* Effect.flip(withEnv({ LOG_LEVEL: "loud", LOG_FORMAT: "JSON" }))
      expect(error.problems).toEqual([`LOG_LEVEL: got "loud": expected one of all, trace, debug, info, warning, error, fatal, none`])
    }))

  it.effect("the server's timeouts for slow clients have deliberate defaults and are checked", () =>
    Effect.gen(function*() {
      const config = yield* withEnv({})
      expect(config.server).toMatchObject({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000 })
      const error = yield* Effect.flip(withEnv({ HTTP_HEADERS_TIMEOUT_MS: "40000", HTTP_REQUEST_TIMEOUT_MS: "30000" }))
      expect(error.problems[0]).toMatch(/^HTTP_HEADERS_TIMEOUT_MS: 40000 is longer than HTTP_REQUEST_TIMEOUT_MS/)
    }))

  it.effect("OTEL_* read as OpenTelemetry defines them; the export headers stay secret, in errors too", () =>
    Effect.gen(function*() {
      expect(Option.isNone((yield* withEnv({})).telemetry.endpoint)).toBe(true)
      const config = yield* withEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
        OTEL_EXPORTER_OTLP_HEADERS: "x-honeycomb-team=team%20secret, x-other=1",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,service.namespace=policy"
      })
      expect(config.telemetry).toMatchObject({
        endpoint: Option.some("http://collector:4318"),
        protocol: "http/protobuf",
        serviceName: "policy-summarizer",
        resourceAttributes: [["deployment.environment", "prod"], ["service.namespace", "policy"]]
      })
      expect(String(config.telemetry.headers)).not.toContain("secret")
      expect(Option.map(config.telemetry.headers, Redacted.value)).toEqual(Option.some([["x-honeycomb-team", "team secret"], ["x-other", "1"]]))
      const error = yield* Effect.flip(withEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318",
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
        OTEL_EXPORTER_OTLP_HEADERS: "team-secret-key",
        OTEL_RESOURCE_ATTRIBUTES: "region"
      }))
      expect(error.problems).toEqual([
        `OTEL_EXPORTER_OTLP_ENDPOINT: got "collector:4318": expected a URL starting with http:// or https://`,
        `OTEL_EXPORTER_OTLP_PROTOCOL: got "grpc": expected one of http/protobuf, http/json`,
        `OTEL_EXPORTER_OTLP_HEADERS: got a value that is not valid: expected key=value pairs separated by commas, values percent-encoded`,
        `OTEL_RESOURCE_ATTRIBUTES: got "region": expected key=value pairs separated by commas, values percent-encoded`
      ])
    }))

  it.effect("one run names a bad variable of every group, in the order the settings are declared, in one message", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withEnv({
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
        LOG_FORMAT: "xml",
        SUMMARY_LARGE_CHANGE: "drop",
        PRICING_REFRESH_MS: "5",
        SMTP_URL: "http://mail:secret-pass@host",
        COST_ALERT_LEVELS: "half",
        API_TOKENS_FILE: " ",
        SHUTDOWN_GRACE_MS: "soon",
        DATA_DIR: "",
        REDIS_URL: "tcp://cache",
        AI_ENABLED: "maybe",
        OPENROUTER_BASE_URL: "openrouter.ai"
      }))
      expect(error.message).toBe([
        "Invalid configuration (10 problems):",
        `  - OPENROUTER_BASE_URL: got "openrouter.ai": expected a URL starting with http:// or https://`,
        `  - AI_ENABLED: got "maybe": expected true or false`,
        `  - REDIS_URL: got a value that is not valid: expected a URL starting with redis:// or rediss://`,
        `  - SHUTDOWN_GRACE_MS: got "soon": expected a whole number from 0 to 600000`,
        `  - COST_ALERT_LEVELS: got "half": expected a comma-separated list of positive decimals such as 0.5,0.8,1.0`,
        `  - SMTP_URL: got a value that is not valid: expected a URL starting with smtp:// or smtps://`,
        `  - PRICING_REFRESH_MS: got "5": expected a whole number from 1000 to 86400000`,
        `  - SUMMARY_LARGE_CHANGE: got "drop": expected one of split, truncate`,
        `  - LOG_FORMAT: got "xml": expected one of json, pretty`,
        `  - OTEL_EXPORTER_OTLP_PROTOCOL: got "grpc": expected one of http/protobuf, http/json`
      ].join("\n"))
    }))
})
