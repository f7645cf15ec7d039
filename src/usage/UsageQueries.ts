import * as SqlClient from "@effect/sql/SqlClient"
import { BigDecimal, Data, Effect, Option, Schema } from "effect"
import { periodOf } from "../domain/Period.js"
import * as Money from "../domain/Money.js"
import { fromRow, Row } from "./LedgerRow.js"
import { noCaller } from "./UsageRepo.js"
import type { CallFilter, GroupBy, Spend, UsageGroup, UsagePage, UsageTotals } from "./UsageRepo.js"

/** Sums of BIGINT come back as NUMERIC text; counts and tokens stay far below 2^53. */
const Count = Schema.NumberFromString

const GroupRow = Schema.Struct({
  key: Schema.String,
  calls: Count,
  failed_calls: Count,
  unknown_cost_calls: Count,
  prompt_tokens: Count,
  completion_tokens: Count,
  total_tokens: Count,
  cost_usd: Schema.BigDecimal
})

const SpendRow = Schema.Struct({ today: Schema.BigDecimal, month: Schema.BigDecimal })

const CallerSpendRow = Schema.Struct({ caller: Schema.String, month: Schema.BigDecimal })

const PageRow = Schema.extend(Row, Schema.Struct({ created_us: Schema.String }))

/** `before` cursors: the microsecond timestamp and id of the last row of a page, opaque to clients. */
export const encodeCursor = (createdUs: string, id: string) => Buffer.from(`${createdUs}|${id}`).toString("base64url")

// The last microsecond of year 9999: any row's timestamp is below it, and PostgreSQL's bigint and timestamptz hold it.
const latestUs = 253_402_300_799_999_999n

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Only what this endpoint could have issued: a cursor the database would reject is the caller's error, not an outage. */
export const decodeCursor = (cursor: string): Option.Option<{ readonly createdUs: string; readonly id: string }> => {
  const match = /^(\d{1,20})\|(.{36})$/.exec(Buffer.from(cursor, "base64url").toString())
  return match && BigInt(match[1]!) <= latestUs && uuid.test(match[2]!)
    ? Option.some({ createdUs: match[1]!, id: match[2]! })
    : Option.none()
}

/** The totals of no calls at all. */
export const noCalls: UsageTotals = {
  calls: 0,
  failedCalls: 0,
  unknownCostCalls: 0,
  promptTokens: 0,
  completionTokens: 0,
  totalTokens: 0,
  costUsd: BigDecimal.fromBigInt(0n)
}

const add = (a: UsageTotals, b: UsageTotals): UsageTotals => ({
  calls: a.calls + b.calls,
  failedCalls: a.failedCalls + b.failedCalls,
  unknownCostCalls: a.unknownCostCalls + b.unknownCostCalls,
  promptTokens: a.promptTokens + b.promptTokens,
  completionTokens: a.completionTokens + b.completionTokens,
  totalTokens: a.totalTokens + b.totalTokens,
  costUsd: Money.sum([a.costUsd, b.costUsd])
})

export class InvalidCursor extends Data.TaggedError("InvalidCursor")<{ readonly cursor: string }> {}

/** The ledger's read side; totals and spend read the daily rollup kept by the insert trigger. */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const totals = (from: string, to: string, groupBy: GroupBy) =>
    Effect.gen(function*() {
      const key = groupBy === "day"
        ? sql`to_char(day, 'YYYY-MM-DD')`
        : groupBy === "month"
        ? sql`to_char(day, 'YYYY-MM')`
        : groupBy === "caller"
        ? sql`CASE WHEN caller = '' THEN ${noCaller} ELSE caller END`
        : sql`model`
      // Each rollup holds every row once, so both give the same totals.
      const rollup = groupBy === "caller" ? sql`llm_api_usage_caller_daily` : sql`llm_api_usage_daily`
      const rows = yield* sql`
        SELECT ${key} AS key, sum(calls) AS calls, sum(failed_calls) AS failed_calls,
               sum(unknown_cost_calls) AS unknown_cost_calls, sum(prompt_tokens) AS prompt_tokens,
               sum(completion_tokens) AS completion_tokens, sum(total_tokens) AS total_tokens,
               sum(cost_usd) AS cost_usd
        FROM ${rollup}
        WHERE day BETWEEN ${from}::date AND ${to}::date
        GROUP BY 1
        ORDER BY 1`
      const decoded = yield* Schema.decodeUnknown(Schema.Array(GroupRow))(rows)
      const groups: Array<UsageGroup> = decoded.map((r) => ({
        key: r.key,
        calls: r.calls,
        failedCalls: r.failed_calls,
        unknownCostCalls: r.unknown_cost_calls,
        promptTokens: r.prompt_tokens,
        completionTokens: r.completion_tokens,
        totalTokens: r.total_tokens,
        costUsd: BigDecimal.normalize(r.cost_usd)
      }))
      return { groups, total: groups.reduce<UsageTotals>(add, noCalls) }
    })

  const spend = (now: Date) =>
    Effect.gen(function*() {
      const today = periodOf("daily", now)
      const monthStart = `${periodOf("monthly", now)}-01`
      const rows = yield* sql`
        SELECT coalesce(sum(cost_usd) FILTER (WHERE day = ${today}::date), 0) AS today,
               coalesce(sum(cost_usd), 0) AS month
        FROM llm_api_usage_daily
        WHERE day >= ${monthStart}::date AND day <= ${today}::date`
      const [row] = yield* Schema.decodeUnknown(Schema.Tuple(SpendRow))(rows)
      return { todayUsd: BigDecimal.normalize(row.today), monthUsd: BigDecimal.normalize(row.month) } satisfies Spend
    })

  const callerSpend = (now: Date) =>
    Effect.gen(function*() {
      const today = periodOf("daily", now)
      const monthStart = `${periodOf("monthly", now)}-01`
      const rows = yield* sql`
        SELECT caller, sum(cost_usd) AS month
        FROM llm_api_usage_caller_daily
        WHERE day >= ${monthStart}::date AND day <= ${today}::date AND caller <> ''
        GROUP BY caller`
      const decoded = yield* Schema.decodeUnknown(Schema.Array(CallerSpendRow))(rows)
      return new Map(decoded.map((r) => [r.caller, BigDecimal.normalize(r.month)])) as ReadonlyMap<string, BigDecimal.BigDecimal>
    })

  /** Each given field narrows the rows; none given, every row. */
  const matching = (filter: CallFilter) => [
    ...(filter.model === undefined ? [] : [sql`model = ${filter.model}`]),
    ...(filter.status === undefined ? [] : [sql`status = ${filter.status}`]),
    ...(filter.purpose === undefined ? [] : [sql`purpose = ${filter.purpose}`]),
    ...(filter.caller === undefined ? [] : [sql`caller = ${filter.caller}`])
  ]

  const recent = (limit: number, before: string | null, filter: CallFilter = {}) =>
    Effect.gen(function*() {
      const size = Math.max(1, Math.min(1000, Math.floor(limit)))
      const cursor = before === null ? Option.none() : decodeCursor(before)
      if (before !== null && Option.isNone(cursor)) return yield* new InvalidCursor({ cursor: before })
      const conditions = [
        ...Option.match(cursor, {
          onNone: () => [],
          onSome: (c) => [
            sql`(created_at, id) < (timestamptz 'epoch' + ${c.createdUs}::bigint * interval '1 microsecond', ${c.id}::uuid)`
          ]
        }),
        ...matching(filter)
      ]
      const where = conditions.length === 0 ? sql`` : sql`WHERE ${sql.and(conditions)}`
      const rows = yield* sql`
        SELECT id::text AS id, model, provider, prompt_tokens, completion_tokens, total_tokens, cost_usd,
               cost_source, request_id, created_at, status, error_code, attempt, latency_ms, purpose, caller,
               ((extract(epoch FROM created_at) * 1000000)::numeric(20, 0))::text AS created_us
        FROM llm_api_usage
        ${where}
        ORDER BY created_at DESC, id DESC
        LIMIT ${size + 1}`
      const decoded = yield* Schema.decodeUnknown(Schema.Array(PageRow))(rows)
      const page = decoded.slice(0, size)
      const last = page[page.length - 1]
      return {
        rows: page.map(fromRow),
        nextCursor: decoded.length > size && last ? encodeCursor(last.created_us, last.id) : null
      } satisfies UsagePage
    })

  return { totals, spend, callerSpend, recent }
})
