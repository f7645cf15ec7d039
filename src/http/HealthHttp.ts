import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as SqlClient from "@effect/sql/SqlClient"
import { BigDecimal, Effect, Option, Schema } from "effect"
import { BudgetGuard } from "../budget/BudgetGuard.js"
import { Config } from "../Config.js"
import * as Migrations from "../db/Migrations.js"
import { format } from "../domain/Money.js"
import { CircuitBreaker } from "../llm/CircuitBreaker.js"
import { LlmClient } from "../llm/LlmClient.js"
import { RateLimiter } from "../llm/RateLimiter.js"
import { Pricing } from "../llm/Pricing.js"
import { UsageRepo } from "../usage/UsageRepo.js"
import { Api } from "./Api.js"
import { bearerOf, tokenCheck } from "./Authorization.js"
import type { ReadinessReason } from "./HealthApi.js"
import { NotReady, Readiness } from "./HealthApi.js"
import { prometheusText } from "./Prometheus.js"

type Report = typeof Readiness.Type

const Present = Schema.Array(Schema.Struct({ present: Schema.Boolean }))

/** The table every ledger write goes to; gone means the database was reset under the service. */
const schemaPresent = (sql: SqlClient.SqlClient) =>
  sql`SELECT to_regclass('llm_api_usage') IS NOT NULL AS present`.pipe(
    Effect.flatMap(Schema.decodeUnknown(Present)),
    Effect.map((rows) => rows[0]?.present === true)
  )

export const HealthHttp = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const config = yield* Config
    const sql = yield* SqlClient.SqlClient
    const llm = yield* LlmClient
    const circuit = yield* CircuitBreaker
    const budget = yield* BudgetGuard
    const limiter = yield* RateLimiter
    const ledger = yield* UsageRepo
    const pricing = yield* Pricing
    const showDetails = tokenCheck(config.server.callers)
    const migrating = yield* Effect.makeSemaphore(1)

    /**
     * A database dropped and recreated empty (or restored without this service's tables) is
     * migrated again here, once, so the spool drains without a restart; if that fails, readiness
     * says why.
     */
    const remigrate = migrating.withPermits(1)(Effect.gen(function*() {
      if (yield* schemaPresent(sql)) return true
      yield* Effect.logWarning("The ledger's tables are missing (the database was reset?); applying the migrations again")
      yield* Migrations.run.pipe(Effect.provideService(SqlClient.SqlClient, sql))
      return yield* schemaPresent(sql)
    }))

    const database = Effect.gen(function*() {
      if (yield* schemaPresent(sql)) return { ok: true, detail: "reachable", reason: "ok" as const }
      const restored = yield* remigrate.pipe(Effect.catchAll((error) =>
        Effect.logError("Could not re-apply the migrations", error).pipe(Effect.as(false))
      ))
      return restored
        ? { ok: true, detail: "reachable; the schema was missing and has been migrated again", reason: "ok" as const }
        : { ok: false, detail: "reachable, but the ledger's tables are missing and the migrations could not be applied", reason: "schema_missing" as const }
    }).pipe(
      Effect.timeout("5 seconds"),
      Effect.catchAll((error) => Effect.succeed({ ok: false, detail: `unreachable: ${error._tag}`, reason: "database_unreachable" as const }))
    )

    /** The most one summary call may cost: the largest prompt it sends and a full answer, at the default model's price. */
    const worstCaseCall = Effect.map(pricing.priceOf(config.openrouter.defaultModel), Option.map((price) =>
      BigDecimal.sum(
        BigDecimal.sum(
          BigDecimal.multiply(BigDecimal.fromBigInt(BigInt(config.summary.inputBudgetTokens)), price.prompt),
          BigDecimal.multiply(BigDecimal.fromBigInt(BigInt(config.openrouter.maxTokens)), price.completion)
        ),
        price.request
      )
    ))

    const budgetCheck = Effect.gen(function*() {
      const worst = yield* worstCaseCall
      const caps = yield* budget.capState(worst)
      const full = caps.find((c) => Option.getOrElse(c.roomForOneMoreCall, () => BigDecimal.isPositive(c.remainingUsd)) === false)
      return {
        ok: full === undefined,
        detail: caps.length === 0
          ? "no hard limit"
          : full === undefined
          ? "room for one more worst-case call under every hard limit"
          : `${full.budget} hard limit: ${format(full.spentUsd)} spent and ${format(full.reservedUsd)} reserved of ${format(full.limitUsd)} USD; ` +
            `no room for one more call (up to ${Option.match(worst, { onNone: () => "an unknown amount", onSome: format })} USD): calls are refused`,
        caps: caps.map((c) => ({
          budget: c.budget,
          period: c.period,
          limitUsd: format(c.limitUsd),
          spentUsd: format(c.spentUsd),
          reservedUsd: format(c.reservedUsd),
          remainingUsd: format(c.remainingUsd),
          worstCaseCallUsd: Option.match(worst, { onNone: () => null, onSome: format }),
          roomForOneMoreCall: Option.getOrNull(c.roomForOneMoreCall),
          refusals: c.refusals,
          lastRefusedUsd: Option.getOrNull(c.lastRefusedUsd)
        }))
      }
    }).pipe(Effect.catchAll(() => Effect.succeed({ ok: false, detail: "the spend could not be read", caps: [] })))

    const readiness = Effect.gen(function*() {
      const [db, upstream, circuitState, budgetState, spoolDepth, limits] = yield* Effect.all([
        database,
        llm.upstreamHealth,
        circuit.state,
        budgetCheck,
        ledger.spoolDepth,
        limiter.stats
      ], { concurrency: "unbounded" })
      const aiReason: ReadinessReason = !config.llm.aiEnabled
        ? "ai_disabled"
        : upstream.reason === "no_api_key"
        ? "no_api_key"
        : upstream.reason === "key_rejected"
        ? "upstream_key_rejected"
        : !upstream.ok
        ? "upstream_unreachable"
        : circuitState === "open"
        ? "circuit_open"
        : !budgetState.ok
        ? "budget_no_room"
        : "ok"
      const report: Report = {
        status: db.ok ? "ok" : "not_ok",
        ai: aiReason === "ok" ? "ready" : "not_ready",
        reason: db.ok ? aiReason : db.reason,
        database: { ok: db.ok, detail: db.detail },
        upstream: { ok: upstream.ok, detail: upstream.detail },
        aiEnabled: config.llm.aiEnabled,
        circuit: circuitState,
        budget: budgetState,
        spoolDepth,
        rateLimiter: {
          mode: limits.mode,
          queueDepth: limits.queueDepth,
          inFlight: limits.inFlight,
          pausedUntil: limits.pausedUntilMs === null ? null : new Date(limits.pausedUntilMs).toISOString()
        }
      }
      return report
    })

    /** Upstream text (an echoed key, say) and spend stay behind the token. */
    const visible = (report: Report, authorization: string | undefined): Report =>
      Option.match(showDetails, {
        onNone: () => report,
        onSome: (check) =>
          Option.exists(bearerOf(authorization), check) ? report : { status: report.status, ai: report.ai, reason: report.reason }
      })

    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const report = visible(yield* readiness, request.headers["authorization"])
          return report.status === "ok" ? report : yield* new NotReady({ readiness: report })
        }))
      .handle("metrics", () => prometheusText)
  })
)
