import { BigDecimal, Option, Schema } from "effect"
import type { UsageRecord } from "../domain/UsageRecord.js"
import * as Money from "../domain/Money.js"

/** The columns of `llm_api_usage` with their SQL types, in the order every INSERT names them. */
export const columnTypes = {
  id: "uuid",
  model: "varchar",
  provider: "varchar",
  prompt_tokens: "int",
  completion_tokens: "int",
  total_tokens: "int",
  cost_usd: "numeric",
  cost_source: "varchar",
  request_id: "varchar",
  created_at: "timestamptz",
  status: "varchar",
  error_code: "varchar",
  attempt: "int",
  latency_ms: "int",
  purpose: "varchar",
  job_item_id: "uuid",
  caller: "varchar"
} as const

const columns = Object.keys(columnTypes) as ReadonlyArray<keyof typeof columnTypes>

/**
 * One statement of fixed text for any number of rows: a parameter per column holding an array,
 * rather than a parameter per value, keeps a large batch cheap to bind and to parse. Rows already
 * present (a replay, or a batch that committed after its client gave up) are skipped by id.
 */
export const insertStatement = `INSERT INTO llm_api_usage (${columns.join(", ")})
  SELECT * FROM unnest(${columns.map((c, i) => `$${i + 1}::${columnTypes[c]}[]`).join(", ")})
  ON CONFLICT (id) DO NOTHING`

export const insertParameters = (rows: ReadonlyArray<Columns>): ReadonlyArray<ReadonlyArray<unknown>> =>
  columns.map((c) => rows.map((r) => r[c]))

/** One row as the database (and the spool) hold it: the cost as exact decimal text, never a float. */
const ColumnsSchema = Schema.Struct({
  id: Schema.String,
  model: Schema.String,
  provider: Schema.NullOr(Schema.String),
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  total_tokens: Schema.Number,
  cost_usd: Schema.NullOr(Schema.String),
  cost_source: Schema.Literal("provider", "pricing", "unknown"),
  request_id: Schema.NullOr(Schema.String),
  created_at: Schema.String,
  status: Schema.Literal("success", "error"),
  error_code: Schema.NullOr(Schema.String),
  attempt: Schema.Number,
  latency_ms: Schema.Number,
  purpose: Schema.NullOr(Schema.String),
  // Spool lines written before callers existed have no `caller`.
  caller: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  // Nor `job_item_id` those written before summary jobs.
  job_item_id: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})
export type Columns = typeof ColumnsSchema.Type

/** Bounded to the column widths, so an odd provider name cannot make a whole batch fail. */
const clip = (s: string | null, max: number) => (s === null ? null : s.slice(0, max))

export const toColumns = (r: UsageRecord): Columns => {
  // The table's CHECK holds by construction: a cost without a source, or a source without a cost, is unknown.
  const known = Option.isSome(r.costUsd) && r.costSource !== "unknown"
  return {
    id: r.id,
    model: clip(r.model, 100)!,
    provider: clip(r.provider, 50),
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.totalTokens,
    cost_usd: known ? Money.formatOption(r.costUsd) : null,
    cost_source: known ? r.costSource : "unknown",
    request_id: clip(r.requestId, 255),
    created_at: r.createdAt.toISOString(),
    status: r.status,
    error_code: clip(r.errorCode, 100),
    attempt: r.attempt,
    latency_ms: Math.max(0, Math.round(r.latencyMs)),
    purpose: clip(r.purpose, 100),
    caller: clip(r.caller, 100),
    job_item_id: r.jobItemId ?? null
  }
}

/** A row read back from the ledger (`recent`): the driver gives NUMERIC as text and TIMESTAMPTZ as a Date. */
export const Row = Schema.Struct({
  ...ColumnsSchema.fields,
  cost_usd: Schema.NullOr(Schema.BigDecimal),
  created_at: Schema.DateFromSelf
})

export const fromRow = (r: typeof Row.Type): UsageRecord => ({
  id: r.id,
  model: r.model,
  provider: r.provider,
  promptTokens: r.prompt_tokens,
  completionTokens: r.completion_tokens,
  totalTokens: r.total_tokens,
  costUsd: Option.map(Option.fromNullable(r.cost_usd), BigDecimal.normalize),
  costSource: r.cost_source,
  requestId: r.request_id,
  createdAt: r.created_at,
  status: r.status,
  errorCode: r.error_code,
  attempt: r.attempt,
  latencyMs: r.latency_ms,
  purpose: r.purpose,
  caller: r.caller,
  ...(r.job_item_id === null ? {} : { jobItemId: r.job_item_id })
})

/** A spool line: the same columns as JSON. A torn last line (a crash mid-write) does not decode and is skipped. */
export const SpoolLine = Schema.parseJson(ColumnsSchema)
