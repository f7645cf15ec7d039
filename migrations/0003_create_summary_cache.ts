import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/** Summaries keyed by a hash of the normalized change, the model and the parameters. */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE IF NOT EXISTS summary_cache (
      key CHAR(64) PRIMARY KEY,
      response JSONB NOT NULL,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      expires_at TIMESTAMPTZ NOT NULL
    )`
  yield* sql`CREATE INDEX IF NOT EXISTS summary_cache_expires_at ON summary_cache (expires_at)`
})
