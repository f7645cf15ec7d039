import * as SqlClient from "@effect/sql/SqlClient"
import * as Migrator from "@effect/sql/Migrator"
import { Effect, Layer } from "effect"
import createLlmApiUsage from "../../migrations/0001_create_llm_api_usage.js"
import createCostAlerts from "../../migrations/0002_create_cost_alerts.js"
import createSummaryCache from "../../migrations/0003_create_summary_cache.js"
import addCaller from "../../migrations/0004_add_caller.js"
import createSummaryJobs from "../../migrations/0005_create_summary_jobs.js"

const migrationsTable = "effect_sql_migrations"

/** Static imports: Node 20 under vitest cannot import `.ts` migrations from the file system at run time. */
const loader = Migrator.fromRecord({
  "0001_create_llm_api_usage": createLlmApiUsage,
  "0002_create_cost_alerts": createCostAlerts,
  "0003_create_summary_cache": createSummaryCache,
  "0004_add_caller": addCaller,
  "0005_create_summary_jobs": createSummaryJobs
})

const migrate = Migrator.make({})({ loader, table: migrationsTable })

/**
 * Applies pending migrations. The migrator's own table lock does not cover creating its table,
 * so two processes starting on an empty database could both try; a transaction-scoped advisory
 * lock taken first serializes them, and the second finds nothing to do.
 */
export const run = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const applied = yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtext(${migrationsTable}))`
    yield* sql`
      CREATE TABLE IF NOT EXISTS ${sql(migrationsTable)} (
        migration_id integer PRIMARY KEY,
        created_at timestamp with time zone NOT NULL DEFAULT now(),
        name text NOT NULL
      )`
    return yield* migrate
  }))
  yield* applied.length > 0
    ? Effect.logInfo("Database migrations applied").pipe(
      Effect.annotateLogs("migrations", applied.map(([id, name]) => `${String(id).padStart(4, "0")}_${name}`).join(","))
    )
    : Effect.logDebug("Database schema up to date")
})

/** Runs the migrations while the layer is built, so nothing starts on an old schema. */
export const layer = Layer.effectDiscard(run)
