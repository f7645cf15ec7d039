import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * One row per (budget, period, level): the unique key is the claim that makes an alert go out
 * once across restarts and replicas; `sent_at` stays NULL until a channel accepted it, so a failed
 * send is retried on later runs.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE IF NOT EXISTS cost_alerts (
      budget VARCHAR(20) NOT NULL,
      period VARCHAR(10) NOT NULL,
      level NUMERIC NOT NULL,
      limit_usd NUMERIC NOT NULL,
      spent_usd NUMERIC NOT NULL,
      claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      sent_at TIMESTAMPTZ,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      PRIMARY KEY (budget, period, level)
    )`
  yield* sql`
    CREATE TABLE IF NOT EXISTS budget_reservations (
      id UUID PRIMARY KEY,
      amount_usd NUMERIC NOT NULL,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`
})
