import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/**
 * One row per (budget, period, level): the unique key is the claim that makes an alert go out
 * once across restarts and replicas; `sent_at` stays NULL until every channel accepted it, so a
 * failed send is retried on later runs. `locked_until` is the lease a monitor takes on a row while
 * it sends, so two replicas never send the same alert at once; `delivered` lists the channels that
 * already accepted it, so a retry after a partial failure does not repeat them.
 *
 * `budget_reservations` holds the hard cap's in-flight worst-case costs, decided under an
 * advisory lock so replicas share one cap.
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
      locked_until TIMESTAMPTZ,
      delivered TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (budget, period, level)
    )`
  yield* sql`
    CREATE TABLE IF NOT EXISTS budget_reservations (
      id UUID PRIMARY KEY,
      amount_usd NUMERIC NOT NULL,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`
})
