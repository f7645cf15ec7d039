import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/**
 * The ledger: one row per upstream attempt, successes and failures alike, with the seed's columns
 * plus what an operator needs. An unknown cost is NULL, never 0, and the CHECK keeps the two
 * columns that say so in agreement.
 *
 * `llm_api_usage_daily` is a per-UTC-day, per-model rollup kept by a statement-level trigger, so
 * it follows every insert (the repo's multi-row INSERT, a replay, a bulk load) and a month of
 * totals reads about 31 x models rows instead of millions. Rows skipped by ON CONFLICT DO NOTHING
 * are not in the transition table, so replays never count twice.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE IF NOT EXISTS llm_api_usage (
      id UUID PRIMARY KEY,
      model VARCHAR(100) NOT NULL,
      provider VARCHAR(50),
      prompt_tokens INTEGER NOT NULL DEFAULT 0,
      completion_tokens INTEGER NOT NULL DEFAULT 0,
      total_tokens INTEGER NOT NULL DEFAULT 0,
      cost_usd NUMERIC,
      request_id VARCHAR(255),
      created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      status VARCHAR(10) NOT NULL CHECK (status IN ('success', 'error')),
      error_code VARCHAR(100),
      attempt INTEGER NOT NULL DEFAULT 1,
      latency_ms INTEGER NOT NULL DEFAULT 0,
      cost_source VARCHAR(10) NOT NULL CHECK (cost_source IN ('provider', 'pricing', 'unknown')),
      purpose VARCHAR(100),
      CONSTRAINT llm_api_usage_cost_known CHECK ((cost_usd IS NULL) = (cost_source = 'unknown'))
    )`
  yield* sql`CREATE INDEX IF NOT EXISTS llm_api_usage_created_at ON llm_api_usage (created_at DESC, id DESC)`
  yield* sql`CREATE INDEX IF NOT EXISTS llm_api_usage_request_id ON llm_api_usage (request_id)`
  yield* sql`
    CREATE TABLE IF NOT EXISTS llm_api_usage_daily (
      day DATE NOT NULL,
      model VARCHAR(100) NOT NULL,
      calls BIGINT NOT NULL,
      failed_calls BIGINT NOT NULL,
      unknown_cost_calls BIGINT NOT NULL,
      prompt_tokens BIGINT NOT NULL,
      completion_tokens BIGINT NOT NULL,
      total_tokens BIGINT NOT NULL,
      cost_usd NUMERIC NOT NULL,
      PRIMARY KEY (day, model)
    )`
  yield* sql`
    CREATE OR REPLACE FUNCTION llm_api_usage_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO llm_api_usage_daily AS d
        (day, model, calls, failed_calls, unknown_cost_calls, prompt_tokens, completion_tokens, total_tokens, cost_usd)
      SELECT (created_at AT TIME ZONE 'UTC')::date, model, count(*),
             count(*) FILTER (WHERE status = 'error'),
             count(*) FILTER (WHERE cost_usd IS NULL),
             sum(prompt_tokens), sum(completion_tokens), sum(total_tokens),
             coalesce(sum(cost_usd), 0)
      FROM inserted
      GROUP BY 1, 2
      ORDER BY 1, 2
      ON CONFLICT (day, model) DO UPDATE SET
        calls = d.calls + excluded.calls,
        failed_calls = d.failed_calls + excluded.failed_calls,
        unknown_cost_calls = d.unknown_cost_calls + excluded.unknown_cost_calls,
        prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = d.completion_tokens + excluded.completion_tokens,
        total_tokens = d.total_tokens + excluded.total_tokens,
        cost_usd = d.cost_usd + excluded.cost_usd;
      RETURN NULL;
    END
    $$`
  yield* sql`DROP TRIGGER IF EXISTS llm_api_usage_rollup ON llm_api_usage`
  yield* sql`
    CREATE TRIGGER llm_api_usage_rollup
      AFTER INSERT ON llm_api_usage
      REFERENCING NEW TABLE AS inserted
      FOR EACH STATEMENT EXECUTE FUNCTION llm_api_usage_rollup()`
})
