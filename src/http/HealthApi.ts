import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"

const Check = Schema.Struct({ ok: Schema.Boolean, detail: Schema.String })

/** Fixed codes, safe to show anyone: the first that applies, in this order. */
export const ReadinessReason = Schema.Literal(
  "ok",
  "database_unreachable",
  "schema_missing",
  "ai_disabled",
  "no_api_key",
  "upstream_key_rejected",
  "upstream_unreachable",
  "circuit_open",
  "budget_no_room"
).annotations({
  description: "ok; database_unreachable and schema_missing (503, not ready); ai_disabled (AI_ENABLED=false), " +
    "no_api_key, upstream_key_rejected (OpenRouter answered 401/403 to OPENROUTER_API_KEY), upstream_unreachable " +
    "(the key check failed otherwise), circuit_open, budget_no_room (a hard cap has no room for one more " +
    "worst-case call): 200, the service answers with raw-diff fallbacks"
})
export type ReadinessReason = typeof ReadinessReason.Type

const Usd = Schema.String.annotations({ description: "USD as exact decimal text" })

export const CapState = Schema.Struct({
  budget: Schema.Literal("daily", "monthly"),
  period: Schema.String,
  limitUsd: Usd,
  spentUsd: Usd,
  reservedUsd: Usd,
  remainingUsd: Usd,
  worstCaseCallUsd: Schema.NullOr(Usd).annotations({
    description: "The most one summary call may cost: the default model at SUMMARY_INPUT_BUDGET_TOKENS prompt and OPENROUTER_MAX_TOKENS answer tokens; null when its price is unknown"
  }),
  roomForOneMoreCall: Schema.NullOr(Schema.Boolean),
  refusals: Schema.Int.annotations({ description: "Calls this process refused under this limit in this period" }),
  lastRefusedUsd: Schema.NullOr(Schema.String).annotations({ description: "The worst case of the last refused call" })
})

/**
 * `status` and `reason` are for anyone; the rest only for a caller with the bearer token (or for
 * everyone when no `API_TOKEN` is set, which is allowed on loopback only).
 */
export const Readiness = Schema.Struct({
  status: Schema.Literal("ok", "not_ok"),
  ai: Schema.Literal("ready", "not_ready"),
  reason: ReadinessReason,
  database: Schema.optional(Check),
  upstream: Schema.optional(Check),
  aiEnabled: Schema.optional(Schema.Boolean),
  circuit: Schema.optional(Schema.Literal("closed", "open", "half_open")),
  budget: Schema.optional(Schema.Struct({ ok: Schema.Boolean, detail: Schema.String, caps: Schema.Array(CapState) })),
  spoolDepth: Schema.optional(Schema.Int),
  rateLimiter: Schema.optional(Schema.Struct({
    mode: Schema.String,
    queueDepth: Schema.Int,
    inFlight: Schema.Int,
    pausedUntil: Schema.NullOr(Schema.String)
  }))
})

/** Not ready (503) only when the ledger cannot be written: the database is unreachable or its schema is missing. */
export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  { readiness: Readiness },
  HttpApiSchema.annotations({ status: 503 })
) {}

export class HealthApi extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
      .annotate(OpenApi.Summary, "Liveness: the process answers")
  )
  .add(
    HttpApiEndpoint.get("ready", "/health/ready")
      .addSuccess(Readiness)
      .addError(NotReady)
      .annotate(OpenApi.Summary, "Readiness: whether the service can answer, and whether the AI can be called")
      .annotate(
        OpenApi.Description,
        "200 while the database takes ledger rows, even when the AI cannot be called (`ai: \"not_ready\"`): the service " +
          "still answers every summary with the raw diff and a fallback reason, which is what change detection needs, so " +
          "a load balancer should keep it. 503 when the database is unreachable or its schema is missing. Without the " +
          "bearer token (when `API_TOKEN` is set) only `status`, `ai` and `reason` are shown."
      )
  )
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .annotate(OpenApi.Summary, "Prometheus metrics, process metrics included")
  )
{}
