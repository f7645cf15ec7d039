import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/**
 * Who spent what. `caller` is the name of the bearer token that made the call (never the token);
 * rows written before this migration keep NULL. `llm_api_usage_caller_daily` is the per-UTC-day,
 * per-caller rollup (NULL stored as '' so it can be part of the key), kept by its own statement
 * trigger and filled from the rows already there, so `groupBy=caller` adds up to the other
 * groupings. Budget reservations and alert claims carry the caller too: each caller has its own
 * hard cap and its own alerts ('' is the global budget).
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE llm_api_usage ADD COLUMN IF NOT EXISTS caller VARCHAR(100)`
  yield* sql`CREATE INDEX IF NOT EXISTS llm_api_usage_caller ON llm_api_usage (caller, created_at DESC, id DESC)`
  yield* sql`
    CREATE TABLE IF NOT EXISTS llm_api_usage_caller_daily (
      day DATE NOT NULL,
      caller VARCHAR(100) NOT NULL,
      calls BIGINT NOT NULL,
      failed_calls BIGINT NOT NULL,
      unknown_cost_calls BIGINT NOT NULL,
      prompt_tokens BIGINT NOT NULL,
      completion_tokens BIGINT NOT NULL,
      total_tokens BIGINT NOT NULL,
      cost_usd NUMERIC NOT NULL,
      PRIMARY KEY (day, caller)
    )`
  yield* sql`
    CREATE OR REPLACE FUNCTION llm_api_usage_caller_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO llm_api_usage_caller_daily AS d
        (day, caller, calls, failed_calls, unknown_cost_calls, prompt_tokens, completion_tokens, total_tokens, cost_usd)
      SELECT (created_at AT TIME ZONE 'UTC')::date, coalesce(caller, ''), count(*),
             count(*) FILTER (WHERE status = 'error'),
             count(*) FILTER (WHERE cost_usd IS NULL),
             sum(prompt_tokens), sum(completion_tokens), sum(total_tokens),
             coalesce(sum(cost_usd), 0)
      FROM inserted
      GROUP BY 1, 2
      ORDER BY 1, 2
      ON CONFLICT (day, caller) DO UPDATE SET
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
  yield* sql`DROP TRIGGER IF EXISTS llm_api_usage_caller_rollup ON llm_api_usage`
  yield* sql`
    CREATE TRIGGER llm_api_usage_caller_rollup
      AFTER INSERT ON llm_api_usage
      REFERENCING NEW TABLE AS inserted
      FOR EACH STATEMENT EXECUTE FUNCTION llm_api_usage_caller_rollup()`
  yield* sql`
    INSERT INTO llm_api_usage_caller_daily
      (day, caller, calls, failed_calls, unknown_cost_calls, prompt_tokens, completion_tokens, total_tokens, cost_usd)
    SELECT (created_at AT TIME ZONE 'UTC')::date, coalesce(caller, ''), count(*),
           count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE cost_usd IS NULL),
           sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), coalesce(sum(cost_usd), 0)
    FROM llm_api_usage
    GROUP BY 1, 2
    ON CONFLICT (day, caller) DO NOTHING`
  yield* sql`ALTER TABLE budget_reservations ADD COLUMN IF NOT EXISTS caller VARCHAR(100)`
  yield* sql`ALTER TABLE cost_alerts ADD COLUMN IF NOT EXISTS caller VARCHAR(100) NOT NULL DEFAULT ''`
  yield* sql`ALTER TABLE cost_alerts DROP CONSTRAINT IF EXISTS cost_alerts_pkey`
  yield* sql`ALTER TABLE cost_alerts ADD PRIMARY KEY (budget, period, level, caller)`
})
