import { BigDecimal, Config as EffectConfig, Context, Data, Effect, Either, Layer, LogLevel, Option, Redacted } from "effect"
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import * as S from "./config/Setting.js"
import { callerNamePattern } from "./domain/Caller.js"

export type PriceOverrides = Readonly<Record<string, { readonly prompt: string; readonly completion: string; readonly request?: string }>>

const isPriceOverrides = (u: unknown): u is PriceOverrides =>
  typeof u === "object" && u !== null && !Array.isArray(u) &&
  Object.values(u).every((p) =>
    typeof p === "object" && p !== null &&
    ["prompt", "completion"].every((k) => typeof (p as Record<string, unknown>)[k] === "string" &&
      /^\d+(\.\d+)?$/.test((p as Record<string, string>)[k]!))
  )

const tokenPairs = S.namedPairs(S.secret(S.token), "name:token pairs such as reports:tok_123,classifier:tok_456", {
  namePattern: callerNamePattern,
  secretValues: true
})

const budgetPairs = S.namedPairs(S.positiveDecimal, "name:amount pairs such as reports:25,classifier:5.50", {
  namePattern: callerNamePattern,
  secretValues: false
})

const logLevels = ["all", "trace", "debug", "info", "warning", "error", "fatal", "none"] as const

/** The spellings other tools use for the same levels. */
const logLevelAliases = {
  warn: "warning",
  err: "error",
  information: "info",
  verbose: "debug",
  critical: "fatal",
  crit: "fatal",
  off: "none",
  silent: "none"
} as const

const capitalize = <L extends string>(s: L) => (s.charAt(0).toUpperCase() + s.slice(1)) as Capitalize<L>

/**
 * Every environment variable of DESIGN.md, each named once, where the service reads it, with the
 * parser that states its expected form. Problems are listed in this order.
 */
const settings = EffectConfig.all({
  openrouter: EffectConfig.all({
    apiKey: S.optional("OPENROUTER_API_KEY", S.secret()),
    baseUrl: S.withDefault("OPENROUTER_BASE_URL", S.url(["http:", "https:"]), "https://openrouter.ai/api/v1"),
    defaultModel: S.withDefault("OPENROUTER_DEFAULT_MODEL", S.text, "openai/gpt-4o-mini"),
    fallbackModels: S.withDefault("OPENROUTER_FALLBACK_MODELS", S.list, []),
    /** As given; empty means the default and fallback models (see `shape`). */
    allowedModels: S.withDefault("OPENROUTER_ALLOWED_MODELS", S.list, []),
    temperature: S.withDefault("OPENROUTER_TEMPERATURE", S.decimalNumber(0, 2), 0.7),
    maxTokens: S.withDefault("OPENROUTER_MAX_TOKENS", S.integer(16, 1_000_000), 500),
    timeoutMs: S.withDefault("OPENROUTER_TIMEOUT_MS", S.integer(1, 3_600_000), 60_000),
    appUrl: S.optional("OPENROUTER_APP_URL", S.url(["http:", "https:"])),
    appTitle: S.optional("OPENROUTER_APP_TITLE", S.headerText),
    maxResponseBytes: S.optional("UPSTREAM_MAX_RESPONSE_BYTES", S.integer(1_024, 4_294_967_296))
  }),
  llm: EffectConfig.all({
    maxRetries: S.withDefault("LLM_MAX_RETRIES", S.integer(0, 10), 3),
    retryBaseMs: S.withDefault("LLM_RETRY_BASE_MS", S.integer(1, 600_000), 1_000),
    retryMaxWaitMs: S.withDefault("LLM_RETRY_MAX_WAIT_MS", S.integer(0, 3_600_000), 60_000),
    circuitThreshold: S.withDefault("LLM_CIRCUIT_THRESHOLD", S.integer(1, 1_000), 5),
    circuitCooldownMs: S.withDefault("LLM_CIRCUIT_COOLDOWN_MS", S.integer(1, 3_600_000), 30_000),
    aiEnabled: S.withDefault("AI_ENABLED", S.boolean, true)
  }),
  rateLimit: EffectConfig.all({
    requests: S.withDefault("LLM_RATE_LIMIT_REQUESTS", S.integer(1, 1_000_000), 60),
    windowMs: S.withDefault("LLM_RATE_LIMIT_WINDOW_MS", S.integer(1, 86_400_000), 60_000),
    marginMs: S.withDefault("LLM_RATE_LIMIT_MARGIN_MS", S.integer(0, 60_000), 20),
    maxConcurrency: S.withDefault("LLM_MAX_CONCURRENCY", S.integer(1, 10_000), 8),
    queueMax: S.withDefault("LLM_QUEUE_MAX", S.integer(0, 1_000_000), 1_000),
    fallbackReplicas: S.withDefault("LLM_RATE_LIMIT_FALLBACK_REPLICAS", S.integer(1, 1_000), 2),
    redisUrl: S.optional("REDIS_URL", S.secret(S.url(["redis:", "rediss:"])))
  }),
  database: EffectConfig.all({
    url: S.optional("DATABASE_URL", S.secret(S.url(["postgres:", "postgresql:"]))),
    dataDir: S.withDefault("DATA_DIR", S.text, "./.data")
  }),
  server: EffectConfig.all({
    host: S.withDefault("HOST", S.text, "127.0.0.1"),
    port: S.withDefault("PORT", S.integer(0, 65_535), 8080),
    apiToken: S.optional("API_TOKEN", S.secret()),
    maxInputBytes: S.withDefault("MAX_INPUT_BYTES", S.integer(1_024, 1_073_741_824), 2_097_152),
    shutdownGraceMs: S.withDefault("SHUTDOWN_GRACE_MS", S.integer(0, 600_000), 10_000),
    headersTimeoutMs: S.withDefault("HTTP_HEADERS_TIMEOUT_MS", S.integer(100, 600_000), 10_000),
    requestTimeoutMs: S.withDefault("HTTP_REQUEST_TIMEOUT_MS", S.integer(100, 3_600_000), 30_000),
    keepAliveTimeoutMs: S.withDefault("HTTP_KEEP_ALIVE_TIMEOUT_MS", S.integer(100, 600_000), 5_000)
  }),
  /** Read into `server.callers` with `API_TOKEN` (see `callersOf`). */
  tokens: EffectConfig.all({
    apiTokens: S.withDefault("API_TOKENS", tokenPairs, []),
    apiTokensFile: S.optional("API_TOKENS_FILE", S.text)
  }),
  budget: EffectConfig.all({
    /** Per-caller monthly hard caps (`CALLER_BUDGETS_MONTHLY_USD`). */
    callerMonthlyUsd: S.withDefault("CALLER_BUDGETS_MONTHLY_USD", budgetPairs, []).pipe(
      EffectConfig.map((pairs): ReadonlyMap<string, BigDecimal.BigDecimal> => new Map(pairs))
    ),
    alertDailyUsd: S.optional("COST_ALERT_DAILY_USD", S.positiveDecimal),
    alertMonthlyUsd: S.optional("COST_ALERT_MONTHLY_USD", S.positiveDecimal),
    alertLevels: S.withDefault("COST_ALERT_LEVELS", S.decimalList, ["0.5", "0.8", "1.0"].map(BigDecimal.unsafeFromString)),
    alertIntervalMs: S.withDefault("COST_ALERT_INTERVAL_MS", S.integer(100, 86_400_000), 300_000),
    hardLimitMonthlyUsd: S.optional("COST_HARD_LIMIT_MONTHLY_USD", S.positiveDecimal),
    hardLimitDailyUsd: S.optional("COST_HARD_LIMIT_DAILY_USD", S.positiveDecimal)
  }),
  alerts: EffectConfig.all({
    recipients: S.withDefault("COST_ALERT_RECIPIENTS", S.list, []),
    from: S.optional("ALERT_FROM", S.text),
    smtpUrl: S.optional("SMTP_URL", S.secret(S.url(["smtp:", "smtps:"]))),
    webhookUrl: S.optional("ALERT_WEBHOOK_URL", S.secret(S.url(["http:", "https:"])))
  }),
  pricing: EffectConfig.all({
    refreshMs: S.withDefault("PRICING_REFRESH_MS", S.integer(1_000, 86_400_000), 3_600_000),
    overrides: S.withDefault(
      "PRICING_OVERRIDES",
      S.json(isPriceOverrides, `a JSON object such as {"model/id":{"prompt":"0.00000015","completion":"0.0000006"}}`),
      {}
    )
  }),
  summary: EffectConfig.all({
    language: S.optional("SUMMARY_LANGUAGE", S.text),
    inputBudgetTokens: S.withDefault("SUMMARY_INPUT_BUDGET_TOKENS", S.integer(256, 2_000_000), 12_000),
    largeChange: S.withDefault("SUMMARY_LARGE_CHANGE", S.oneOf("split", "truncate"), "split"),
    cacheTtlMs: S.withDefault("SUMMARY_CACHE_TTL_MS", S.integer(0, 31_536_000_000), 604_800_000),
    format: S.withDefault("SUMMARY_FORMAT", S.oneOf("structured", "json", "text"), "structured"),
    maxParts: S.withDefault("SUMMARY_MAX_PARTS", S.integer(2, 1_000), 8),
    // One core stays free for the event loop (health checks, the limiter, the ledger writer).
    changeWorkers: S.withDefault("CHANGE_WORKERS", S.integer(0, 64), Math.max(1, availableParallelism() - 1))
  }),
  log: EffectConfig.all({
    level: S.withDefault("LOG_LEVEL", S.oneOfSpelled(logLevels, logLevelAliases), "info").pipe(
      EffectConfig.map((level) => LogLevel.fromLiteral(capitalize(level)))
    ),
    format: S.withDefault("LOG_FORMAT", S.oneOfSpelled(["json", "pretty"], {}), "json")
  }),
  jobs: EffectConfig.all({
    maxItems: S.withDefault("JOB_MAX_ITEMS", S.integer(1, 100_000), 1_000),
    maxBytes: S.withDefault("JOB_MAX_BYTES", S.integer(1_024, 1_073_741_824), 33_554_432),
    retentionDays: S.withDefault("JOB_RETENTION_DAYS", S.integer(1, 3_650), 30),
    /** Items one replica works on at once; 0: this replica takes no job items. */
    concurrency: S.withDefault("JOB_CONCURRENCY", S.integer(0, 256), 4),
    callbackSecret: S.optional("CALLBACK_SECRET", S.secret()),
    callbackAllowedHosts: S.withDefault("CALLBACK_ALLOWED_HOSTS", S.list, []).pipe(
      EffectConfig.map((hosts) => hosts.map((h) => h.toLowerCase()))
    ),
    callbackMaxAttempts: S.withDefault("CALLBACK_MAX_ATTEMPTS", S.integer(1, 100), 8)
  }),
  telemetry: EffectConfig.all({
    /** Traces are exported to `{endpoint}/v1/traces` when set; without it no span is made. */
    endpoint: S.optional("OTEL_EXPORTER_OTLP_ENDPOINT", S.url(["http:", "https:"])),
    protocol: S.withDefault("OTEL_EXPORTER_OTLP_PROTOCOL", S.oneOf("http/protobuf", "http/json"), "http/protobuf"),
    headers: S.optional("OTEL_EXPORTER_OTLP_HEADERS", S.redacted(S.keyValues)),
    serviceName: S.withDefault("OTEL_SERVICE_NAME", S.text, "policy-summarizer"),
    resourceAttributes: S.withDefault("OTEL_RESOURCE_ATTRIBUTES", S.keyValues, [])
  })
})

type Values = EffectConfig.Config.Success<typeof settings>

const loopback = (host: string) => host === "localhost" || host === "::1" || /^127\./.test(host)

/** A named bearer token; `API_TOKEN` is the caller `default`. */
export interface ApiCaller {
  readonly name: string
  readonly token: Redacted.Redacted<string>
}

/** The settings as the services read them: the values plus what is worked out from several of them. */
const shape = ({ tokens: _, ...v }: Values, callers: ReadonlyArray<ApiCaller>) => ({
  ...v,
  openrouter: {
    ...v.openrouter,
    allowedModels: v.openrouter.allowedModels.length > 0 ? v.openrouter.allowedModels : [v.openrouter.defaultModel, ...v.openrouter.fallbackModels]
  },
  server: {
    ...v.server,
    /** Every accepted token with its caller's name; empty: no token is required (loopback only). */
    callers
  }
})

export type AppConfig = ReturnType<typeof shape>

/** Raised once at start with every bad variable, so an operator fixes them all in one go. */
export class ConfigInvalid extends Data.TaggedError("ConfigInvalid")<{ readonly problems: ReadonlyArray<string> }> {
  override get message() {
    return `Invalid configuration (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n` +
      this.problems.map((p) => `  - ${p}`).join("\n")
  }
}

const crossChecks = (v: Values, callers: ReadonlyArray<ApiCaller>): ReadonlyArray<string> => [
  ...(!loopback(v.server.host) && callers.length === 0
    ? [`API_TOKEN: required when HOST is not a loopback address (HOST is "${v.server.host}"): expected a bearer token (or API_TOKENS)`]
    : []),
  ...[...v.budget.callerMonthlyUsd.keys()].filter((name) => !callers.some((c) => c.name === name)).map((name) =>
    `CALLER_BUDGETS_MONTHLY_USD: names "${name}", which is no caller of API_TOKENS, API_TOKENS_FILE or API_TOKEN (default): expected known caller names`
  ),
  ...(v.openrouter.allowedModels.length > 0 && !v.openrouter.allowedModels.includes(v.openrouter.defaultModel)
    ? [`OPENROUTER_ALLOWED_MODELS: does not contain OPENROUTER_DEFAULT_MODEL "${v.openrouter.defaultModel}": expected a list that includes it`]
    : []),
  ...(v.jobs.callbackAllowedHosts.length > 0 && Option.isNone(v.jobs.callbackSecret)
    ? ["CALLBACK_SECRET: required when CALLBACK_ALLOWED_HOSTS names hosts (callbacks are signed with it): expected a secret"]
    : []),
  ...(v.server.headersTimeoutMs > v.server.requestTimeoutMs
    ? [`HTTP_HEADERS_TIMEOUT_MS: ${v.server.headersTimeoutMs} is longer than HTTP_REQUEST_TIMEOUT_MS (${v.server.requestTimeoutMs}): expected at most that`]
    : [])
]

/** `API_TOKEN` as `default`, then `API_TOKENS`, then the lines of `API_TOKENS_FILE`; a name or a token only once. */
const callersOf = (v: Values, problems: Array<string>): ReadonlyArray<ApiCaller> => {
  const fromFile = Option.match(v.tokens.apiTokensFile, {
    onNone: () => [],
    onSome: (path) => {
      const text = Either.try(() => readFileSync(path, "utf8"))
      if (Either.isLeft(text)) {
        problems.push(`API_TOKENS_FILE: cannot read "${path}": expected a readable file of name:token lines`)
        return []
      }
      return Either.match(tokenPairs(text.right), {
        onLeft: (problem) => (problems.push(`API_TOKENS_FILE: ${problem}`), []),
        onRight: (pairs) => pairs
      })
    }
  })
  const all: ReadonlyArray<readonly [string, string, Redacted.Redacted<string>]> = [
    ...Option.match(v.server.apiToken, { onNone: () => [], onSome: (t) => [["API_TOKEN", "default", t] as const] }),
    ...v.tokens.apiTokens.map(([name, t]) => ["API_TOKENS", name, t] as const),
    ...fromFile.map(([name, t]) => ["API_TOKENS_FILE", name, t] as const)
  ]
  const callers: Array<ApiCaller> = []
  for (const [source, name, token] of all) {
    if (callers.some((c) => c.name === name)) {
      problems.push(`${source}: the caller name "${name}" is already taken${name === "default" ? " (by API_TOKEN)" : ""}: expected each name once`)
    } else if (callers.some((c) => Redacted.value(c.token) === Redacted.value(token))) {
      problems.push(`${source}: the token of "${name}" is also another caller's: expected a distinct token per caller`)
    } else callers.push({ name, token })
  }
  return callers
}

/** Decodes every setting at once; reading the environment happens here and nowhere else. */
export const load: Effect.Effect<AppConfig, ConfigInvalid> = Effect.gen(function*() {
  const values = yield* Effect.mapError(settings, (error) => new ConfigInvalid({ problems: S.problemsOf(error) }))
  const problems: Array<string> = []
  const callers = callersOf(values, problems)
  if (problems.length === 0) problems.push(...crossChecks(values, callers))
  return problems.length > 0 ? yield* new ConfigInvalid({ problems }) : shape(values, callers)
})

export class Config extends Context.Tag("Config")<Config, AppConfig>() {
  static readonly layer = Layer.effect(Config, load)
}
