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

/** Every environment variable of DESIGN.md, with the parser that states its expected form. */
const settings = {
  apiKey: S.optional("OPENROUTER_API_KEY", S.secret()),
  baseUrl: S.withDefault("OPENROUTER_BASE_URL", S.url(["http:", "https:"]), "https://openrouter.ai/api/v1"),
  defaultModel: S.withDefault("OPENROUTER_DEFAULT_MODEL", S.text, "openai/gpt-4o-mini"),
  fallbackModels: S.withDefault("OPENROUTER_FALLBACK_MODELS", S.list, []),
  allowedModels: S.withDefault("OPENROUTER_ALLOWED_MODELS", S.list, []),
  temperature: S.withDefault("OPENROUTER_TEMPERATURE", S.decimalNumber(0, 2), 0.7),
  maxTokens: S.withDefault("OPENROUTER_MAX_TOKENS", S.integer(16, 1_000_000), 500),
  timeoutMs: S.withDefault("OPENROUTER_TIMEOUT_MS", S.integer(1, 3_600_000), 60_000),
  appUrl: S.optional("OPENROUTER_APP_URL", S.url(["http:", "https:"])),
  appTitle: S.optional("OPENROUTER_APP_TITLE", S.headerText),
  maxResponseBytes: S.optional("UPSTREAM_MAX_RESPONSE_BYTES", S.integer(1_024, 4_294_967_296)),
  maxRetries: S.withDefault("LLM_MAX_RETRIES", S.integer(0, 10), 3),
  retryBaseMs: S.withDefault("LLM_RETRY_BASE_MS", S.integer(1, 600_000), 1_000),
  retryMaxWaitMs: S.withDefault("LLM_RETRY_MAX_WAIT_MS", S.integer(0, 3_600_000), 60_000),
  rateLimitRequests: S.withDefault("LLM_RATE_LIMIT_REQUESTS", S.integer(1, 1_000_000), 60),
  rateLimitWindowMs: S.withDefault("LLM_RATE_LIMIT_WINDOW_MS", S.integer(1, 86_400_000), 60_000),
  maxConcurrency: S.withDefault("LLM_MAX_CONCURRENCY", S.integer(1, 10_000), 8),
  queueMax: S.withDefault("LLM_QUEUE_MAX", S.integer(0, 1_000_000), 1_000),
  rateLimitReplicas: S.withDefault("LLM_RATE_LIMIT_FALLBACK_REPLICAS", S.integer(1, 1_000), 2),
  circuitThreshold: S.withDefault("LLM_CIRCUIT_THRESHOLD", S.integer(1, 1_000), 5),
  circuitCooldownMs: S.withDefault("LLM_CIRCUIT_COOLDOWN_MS", S.integer(1, 3_600_000), 30_000),
  aiEnabled: S.withDefault("AI_ENABLED", S.boolean, true),
  databaseUrl: S.optional("DATABASE_URL", S.secret(S.url(["postgres:", "postgresql:"]))),
  dataDir: S.withDefault("DATA_DIR", S.text, "./.data"),
  redisUrl: S.optional("REDIS_URL", S.secret(S.url(["redis:", "rediss:"]))),
  host: S.withDefault("HOST", S.text, "127.0.0.1"),
  port: S.withDefault("PORT", S.integer(0, 65_535), 8080),
  apiToken: S.optional("API_TOKEN", S.secret()),
  apiTokens: S.withDefault("API_TOKENS", tokenPairs, []),
  apiTokensFile: S.optional("API_TOKENS_FILE", S.text),
  callerBudgets: S.withDefault("CALLER_BUDGETS_MONTHLY_USD", budgetPairs, []),
  maxInputBytes: S.withDefault("MAX_INPUT_BYTES", S.integer(1_024, 1_073_741_824), 2_097_152),
  shutdownGraceMs: S.withDefault("SHUTDOWN_GRACE_MS", S.integer(0, 600_000), 10_000),
  alertDailyUsd: S.optional("COST_ALERT_DAILY_USD", S.positiveDecimal),
  alertMonthlyUsd: S.optional("COST_ALERT_MONTHLY_USD", S.positiveDecimal),
  alertLevels: S.withDefault("COST_ALERT_LEVELS", S.decimalList, ["0.5", "0.8", "1.0"].map(BigDecimal.unsafeFromString)),
  alertRecipients: S.withDefault("COST_ALERT_RECIPIENTS", S.list, []),
  alertFrom: S.optional("ALERT_FROM", S.text),
  smtpUrl: S.optional("SMTP_URL", S.secret(S.url(["smtp:", "smtps:"]))),
  webhookUrl: S.optional("ALERT_WEBHOOK_URL", S.secret(S.url(["http:", "https:"]))),
  alertIntervalMs: S.withDefault("COST_ALERT_INTERVAL_MS", S.integer(100, 86_400_000), 300_000),
  hardLimitMonthlyUsd: S.optional("COST_HARD_LIMIT_MONTHLY_USD", S.positiveDecimal),
  hardLimitDailyUsd: S.optional("COST_HARD_LIMIT_DAILY_USD", S.positiveDecimal),
  pricingRefreshMs: S.withDefault("PRICING_REFRESH_MS", S.integer(1_000, 86_400_000), 3_600_000),
  pricingOverrides: S.withDefault(
    "PRICING_OVERRIDES",
    S.json(isPriceOverrides, `a JSON object such as {"model/id":{"prompt":"0.00000015","completion":"0.0000006"}}`),
    {}
  ),
  summaryLanguage: S.optional("SUMMARY_LANGUAGE", S.text),
  summaryInputBudgetTokens: S.withDefault("SUMMARY_INPUT_BUDGET_TOKENS", S.integer(256, 2_000_000), 12_000),
  summaryLargeChange: S.withDefault("SUMMARY_LARGE_CHANGE", S.oneOf("split", "truncate"), "split"),
  summaryCacheTtlMs: S.withDefault("SUMMARY_CACHE_TTL_MS", S.integer(0, 31_536_000_000), 604_800_000),
  summaryFormat: S.withDefault("SUMMARY_FORMAT", S.oneOf("structured", "json", "text"), "structured"),
  summaryMaxParts: S.withDefault("SUMMARY_MAX_PARTS", S.integer(2, 1_000), 8),
  // One core stays free for the event loop (health checks, the limiter, the ledger writer).
  changeWorkers: S.withDefault("CHANGE_WORKERS", S.integer(0, 64), Math.max(1, availableParallelism() - 1)),
  logLevel: S.withDefault("LOG_LEVEL", S.oneOfSpelled(logLevels, logLevelAliases), "info"),
  logFormat: S.withDefault("LOG_FORMAT", S.oneOfSpelled(["json", "pretty"], {}), "json"),
  headersTimeoutMs: S.withDefault("HTTP_HEADERS_TIMEOUT_MS", S.integer(100, 600_000), 10_000),
  requestTimeoutMs: S.withDefault("HTTP_REQUEST_TIMEOUT_MS", S.integer(100, 3_600_000), 30_000),
  keepAliveTimeoutMs: S.withDefault("HTTP_KEEP_ALIVE_TIMEOUT_MS", S.integer(100, 600_000), 5_000),
  jobMaxItems: S.withDefault("JOB_MAX_ITEMS", S.integer(1, 100_000), 1_000),
  jobMaxBytes: S.withDefault("JOB_MAX_BYTES", S.integer(1_024, 1_073_741_824), 33_554_432),
  jobRetentionDays: S.withDefault("JOB_RETENTION_DAYS", S.integer(1, 3_650), 30),
  jobConcurrency: S.withDefault("JOB_CONCURRENCY", S.integer(0, 256), 4),
  callbackSecret: S.optional("CALLBACK_SECRET", S.secret()),
  callbackAllowedHosts: S.withDefault("CALLBACK_ALLOWED_HOSTS", S.list, []),
  callbackMaxAttempts: S.withDefault("CALLBACK_MAX_ATTEMPTS", S.integer(1, 100), 8)
} as const

type Settings = typeof settings
type Values = { readonly [K in keyof Settings]: Settings[K] extends S.Setting<infer A> ? A : never }

const loopback = (host: string) => host === "localhost" || host === "::1" || /^127\./.test(host)

/** A named bearer token; `API_TOKEN` is the caller `default`. */
export interface ApiCaller {
  readonly name: string
  readonly token: Redacted.Redacted<string>
}

const shape = (v: Values, callers: ReadonlyArray<ApiCaller>) => ({
  openrouter: {
    apiKey: v.apiKey,
    baseUrl: v.baseUrl,
    defaultModel: v.defaultModel,
    fallbackModels: v.fallbackModels,
    allowedModels: v.allowedModels.length > 0 ? v.allowedModels : [v.defaultModel, ...v.fallbackModels],
    temperature: v.temperature,
    maxTokens: v.maxTokens,
    timeoutMs: v.timeoutMs,
    appUrl: v.appUrl,
    appTitle: v.appTitle,
    maxResponseBytes: v.maxResponseBytes
  },
  llm: {
    aiEnabled: v.aiEnabled,
    maxRetries: v.maxRetries,
    retryBaseMs: v.retryBaseMs,
    retryMaxWaitMs: v.retryMaxWaitMs,
    circuitThreshold: v.circuitThreshold,
    circuitCooldownMs: v.circuitCooldownMs
  },
  rateLimit: {
    requests: v.rateLimitRequests,
    windowMs: v.rateLimitWindowMs,
    maxConcurrency: v.maxConcurrency,
    queueMax: v.queueMax,
    redisUrl: v.redisUrl,
    fallbackReplicas: v.rateLimitReplicas
  },
  database: { url: v.databaseUrl, dataDir: v.dataDir },
  server: {
    host: v.host,
    port: v.port,
    apiToken: v.apiToken,
    /** Every accepted token with its caller's name; empty: no token is required (loopback only). */
    callers,
    maxInputBytes: v.maxInputBytes,
    shutdownGraceMs: v.shutdownGraceMs,
    headersTimeoutMs: v.headersTimeoutMs,
    requestTimeoutMs: v.requestTimeoutMs,
    keepAliveTimeoutMs: v.keepAliveTimeoutMs
  },
  budget: {
    alertDailyUsd: v.alertDailyUsd,
    alertMonthlyUsd: v.alertMonthlyUsd,
    alertLevels: v.alertLevels,
    alertIntervalMs: v.alertIntervalMs,
    hardLimitDailyUsd: v.hardLimitDailyUsd,
    hardLimitMonthlyUsd: v.hardLimitMonthlyUsd,
    /** Per-caller monthly hard caps (`CALLER_BUDGETS_MONTHLY_USD`). */
    callerMonthlyUsd: new Map(v.callerBudgets) as ReadonlyMap<string, BigDecimal.BigDecimal>
  },
  alerts: { recipients: v.alertRecipients, from: v.alertFrom, smtpUrl: v.smtpUrl, webhookUrl: v.webhookUrl },
  pricing: { refreshMs: v.pricingRefreshMs, overrides: v.pricingOverrides },
  summary: {
    language: v.summaryLanguage,
    inputBudgetTokens: v.summaryInputBudgetTokens,
    largeChange: v.summaryLargeChange,
    cacheTtlMs: v.summaryCacheTtlMs,
    format: v.summaryFormat,
    maxParts: v.summaryMaxParts,
    changeWorkers: v.changeWorkers
  },
  log: { level: LogLevel.fromLiteral(capitalize(v.logLevel)), format: v.logFormat },
  jobs: {
    maxItems: v.jobMaxItems,
    maxBytes: v.jobMaxBytes,
    retentionDays: v.jobRetentionDays,
    /** Items one replica works on at once; 0: this replica takes no job items. */
    concurrency: v.jobConcurrency,
    callbackSecret: v.callbackSecret,
    callbackAllowedHosts: v.callbackAllowedHosts.map((h) => h.toLowerCase()),
    callbackMaxAttempts: v.callbackMaxAttempts
  }
})

const capitalize = <L extends string>(s: L) => (s.charAt(0).toUpperCase() + s.slice(1)) as Capitalize<L>

export type AppConfig = ReturnType<typeof shape>

/** Raised once at start with every bad variable, so an operator fixes them all in one go. */
export class ConfigInvalid extends Data.TaggedError("ConfigInvalid")<{ readonly problems: ReadonlyArray<string> }> {
  override get message() {
    return `Invalid configuration (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n` +
      this.problems.map((p) => `  - ${p}`).join("\n")
  }
}

const crossChecks = (v: Values, callers: ReadonlyArray<ApiCaller>): ReadonlyArray<string> => [
  ...(!loopback(v.host) && callers.length === 0
    ? [`API_TOKEN: required when HOST is not a loopback address (HOST is "${v.host}"): expected a bearer token (or API_TOKENS)`]
    : []),
  ...v.callerBudgets.filter(([name]) => !callers.some((c) => c.name === name)).map(([name]) =>
    `CALLER_BUDGETS_MONTHLY_USD: names "${name}", which is no caller of API_TOKENS, API_TOKENS_FILE or API_TOKEN (default): expected known caller names`
  ),
  ...(v.allowedModels.length > 0 && !v.allowedModels.includes(v.defaultModel)
    ? [`OPENROUTER_ALLOWED_MODELS: does not contain OPENROUTER_DEFAULT_MODEL "${v.defaultModel}": expected a list that includes it`]
    : []),
  ...(v.callbackAllowedHosts.length > 0 && Option.isNone(v.callbackSecret)
    ? ["CALLBACK_SECRET: required when CALLBACK_ALLOWED_HOSTS names hosts (callbacks are signed with it): expected a secret"]
    : []),
  ...(v.headersTimeoutMs > v.requestTimeoutMs
    ? [`HTTP_HEADERS_TIMEOUT_MS: ${v.headersTimeoutMs} is longer than HTTP_REQUEST_TIMEOUT_MS (${v.requestTimeoutMs}): expected at most that`]
    : [])
]

/** `API_TOKEN` as `default`, then `API_TOKENS`, then the lines of `API_TOKENS_FILE`; a name or a token only once. */
const callersOf = (v: Values, problems: Array<string>): ReadonlyArray<ApiCaller> => {
  const fromFile = Option.match(v.apiTokensFile, {
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
    ...Option.match(v.apiToken, { onNone: () => [], onSome: (t) => [["API_TOKEN", "default", t] as const] }),
    ...v.apiTokens.map(([name, t]) => ["API_TOKENS", name, t] as const),
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
  const keys = Object.keys(settings) as Array<keyof Settings>
  const raws = yield* EffectConfig.all(keys.map((k) => settings[k].raw)).pipe(
    Effect.mapError((e) => new ConfigInvalid({ problems: [String(e)] }))
  )
  const problems: Array<string> = []
  const values: Record<string, unknown> = {}
  keys.forEach((key, i) => {
    const setting = settings[key] as S.Setting<unknown>
    Either.match(setting.decode(raws[i]!), {
      onLeft: (problem) => problems.push(`${setting.name}: ${problem}`),
      onRight: (value) => (values[key] = value)
    })
  })
  const callers = problems.length === 0 ? callersOf(values as Values, problems) : []
  if (problems.length === 0) problems.push(...crossChecks(values as Values, callers))
  return problems.length > 0 ? yield* new ConfigInvalid({ problems }) : shape(values as Values, callers)
})

export class Config extends Context.Tag("Config")<Config, AppConfig>() {
  static readonly layer = Layer.effect(Config, load)
}
