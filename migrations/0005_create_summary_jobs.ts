import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/**
 * Summary jobs: a job, its items in submission order (the validated input, then the result), the
 * replicas that work on them (a heartbeat, so the items of a killed replica are found and queued
 * again), and the ledger's `job_item_id`, so a job's cost is one query. The queue itself (pg-boss)
 * keeps its own tables in the `pgboss` schema.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE IF NOT EXISTS summary_jobs (
      id UUID PRIMARY KEY,
      caller VARCHAR(100),
      idempotency_key VARCHAR(255),
      body_hash CHAR(64) NOT NULL,
      item_count INTEGER NOT NULL,
      callback_url TEXT,
      callback_state VARCHAR(20),
      callback_attempts INTEGER NOT NULL DEFAULT 0,
      callback_last_error TEXT,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      cancelled_at TIMESTAMPTZ,
      finished_at TIMESTAMPTZ
    )`
  yield* sql`
    CREATE UNIQUE INDEX IF NOT EXISTS summary_jobs_idempotency
      ON summary_jobs (coalesce(caller, ''), idempotency_key) WHERE idempotency_key IS NOT NULL`
  yield* sql`CREATE INDEX IF NOT EXISTS summary_jobs_finished ON summary_jobs (finished_at) WHERE finished_at IS NOT NULL`
  yield* sql`
    CREATE TABLE IF NOT EXISTS summary_job_items (
      id UUID PRIMARY KEY,
      job_id UUID NOT NULL REFERENCES summary_jobs (id) ON DELETE CASCADE,
      position INTEGER NOT NULL,
      client_id VARCHAR(255),
      input JSONB NOT NULL,
      status VARCHAR(20) NOT NULL DEFAULT 'queued',
      claimed_by UUID,
      result JSONB,
      updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      UNIQUE (job_id, position)
    )`
  yield* sql`CREATE INDEX IF NOT EXISTS summary_job_items_running ON summary_job_items (claimed_by) WHERE status = 'running'`
  yield* sql`CREATE INDEX IF NOT EXISTS summary_job_items_open ON summary_job_items (job_id) WHERE status IN ('queued', 'running')`
  yield* sql`
    CREATE TABLE IF NOT EXISTS summary_job_workers (
      id UUID PRIMARY KEY,
      seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`
  yield* sql`ALTER TABLE llm_api_usage ADD COLUMN IF NOT EXISTS job_item_id UUID`
  yield* sql`CREATE INDEX IF NOT EXISTS llm_api_usage_job_item ON llm_api_usage (job_item_id) WHERE job_item_id IS NOT NULL`
})
