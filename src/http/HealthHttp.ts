import { HttpApiBuilder } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { BudgetGuard } from "../budget/BudgetGuard.js"
import { Config } from "../Config.js"
import { CircuitBreaker } from "../llm/CircuitBreaker.js"
import { LlmClient } from "../llm/LlmClient.js"
import { RateLimiter } from "../llm/RateLimiter.js"
import { UsageRepo } from "../usage/UsageRepo.js"
import { Api } from "./Api.js"
import { NotReady } from "./HealthApi.js"
import { prometheusText } from "./Prometheus.js"

export const HealthHttp = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const config = yield* Config
    const sql = yield* SqlClient.SqlClient
    const llm = yield* LlmClient
    const circuit = yield* CircuitBreaker
    const budget = yield* BudgetGuard
    const limiter = yield* RateLimiter
    const ledger = yield* UsageRepo

    const database = sql`SELECT 1`.pipe(
      Effect.timeout("2 seconds"),
      Effect.as({ ok: true, detail: "reachable" }),
      Effect.catchAll((error) => Effect.succeed({ ok: false, detail: `unreachable: ${error._tag}` }))
    )

    const readiness = Effect.gen(function*() {
      const [db, upstream, circuitState, exhausted, spoolDepth, limits] = yield* Effect.all([
        database,
        llm.upstreamHealth,
        circuit.state,
        budget.exhausted,
        ledger.spoolDepth,
        limiter.stats
      ], { concurrency: "unbounded" })
      return {
        database: db,
        upstream: { ok: upstream.ok, detail: upstream.detail },
        aiEnabled: config.llm.aiEnabled,
        circuit: circuitState,
        budget: Option.match(exhausted, {
          onNone: () => ({ ok: true, detail: "within budget" }),
          onSome: (e) => ({ ok: false, detail: `${e.budget} hard limit reached: ${e.committedUsd} of ${e.limitUsd} USD` })
        }),
        spoolDepth,
        rateLimiter: {
          mode: limits.mode,
          queueDepth: limits.queueDepth,
          inFlight: limits.inFlight,
          pausedUntil: limits.pausedUntilMs === null ? null : new Date(limits.pausedUntilMs).toISOString()
        }
      }
    })

    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        Effect.flatMap(readiness, (report) => report.database.ok ? Effect.succeed(report) : Effect.fail(new NotReady({ readiness: report }))))
      .handle("metrics", () => prometheusText)
  })
)
