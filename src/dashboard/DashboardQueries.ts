import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Schema } from "effect"
import { fromRow, Row } from "../usage/LedgerRow.js"

/**
 * The two reads the dashboard needs beyond `/v1/usage`'s: the costliest rows of a period and the
 * values its filters offer. Figures (sums, counts) never come from here: those are `/v1/usage`'s.
 */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /** The `limit` costliest calls of known cost in the UTC days `from` to `to`, both inclusive. */
  const mostExpensive = (from: string, to: string, limit: number) =>
    Effect.gen(function*() {
      const rows = yield* sql`
        SELECT id::text AS id, model, provider, prompt_tokens, completion_tokens, total_tokens, cost_usd,
               cost_source, request_id, created_at, status, error_code, attempt, latency_ms, purpose, caller
        FROM llm_api_usage
        WHERE cost_usd IS NOT NULL
          AND created_at >= ${from}::date AT TIME ZONE 'UTC'
          AND created_at < (${to}::date + 1) AT TIME ZONE 'UTC'
        ORDER BY cost_usd DESC, created_at DESC
        LIMIT ${limit}`
      return (yield* Schema.decodeUnknown(Schema.Array(Row))(rows)).map(fromRow)
    })

  /**
   * The models, purposes and callers seen since the UTC day `from`, for the calls table's filters.
   * Rows without a caller offer no choice: `/v1/usage/calls` takes only a caller's name.
   */
  const filterValues = (from: string) =>
    Effect.gen(function*() {
      const rows = yield* sql`
        SELECT 'model' AS field, model AS value FROM (SELECT DISTINCT model FROM llm_api_usage_daily WHERE day >= ${from}::date) m
        UNION ALL
        SELECT 'purpose', purpose FROM (
          SELECT DISTINCT purpose FROM llm_api_usage
          WHERE purpose IS NOT NULL AND created_at >= ${from}::date AT TIME ZONE 'UTC'
        ) p
        UNION ALL
        SELECT 'caller', caller FROM (
          SELECT DISTINCT caller FROM llm_api_usage_caller_daily WHERE day >= ${from}::date AND caller <> ''
        ) c
        ORDER BY 1, 2`
      const decoded = yield* Schema.decodeUnknown(Schema.Array(Schema.Struct({ field: Schema.String, value: Schema.String })))(rows)
      return {
        models: decoded.filter((r) => r.field === "model").map((r) => r.value),
        purposes: decoded.filter((r) => r.field === "purpose").map((r) => r.value),
        callers: decoded.filter((r) => r.field === "caller").map((r) => r.value)
      }
    })

  return { mostExpensive, filterValues }
})
