import { Clock, Effect, Option } from "effect"
import { periodOf } from "../domain/Period.js"
import { BadRequest, ServiceUnavailable } from "../domain/ApiErrors.js"
import { callerNamePattern } from "../domain/Caller.js"
import type { UsageRecord } from "../domain/UsageRecord.js"
import * as Money from "../domain/Money.js"
import * as Csv from "./Csv.js"
import { decodeCursor } from "./UsageQueries.js"
import { type CallFilter, type GroupBy, type UsageGroup, UsageRepo } from "./UsageRepo.js"

const day = /^(\d{4})-(\d{2})-(\d{2})$/

const parseDay = (field: "from" | "to", value: string | undefined, today: string) => {
  if (value === undefined || value === "") return Effect.succeed(today)
  const m = day.exec(value)
  const date = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null
  return date && date.toISOString().slice(0, 10) === value
    ? Effect.succeed(value)
    : Effect.fail(new BadRequest({ field, message: `${field} must be a date as YYYY-MM-DD, got "${value}"` }))
}

const groupings: ReadonlyArray<GroupBy> = ["day", "month", "model", "caller"]

const parseFormat = (value: string | undefined) =>
  value === undefined || value === "" || value === "json"
    ? Effect.succeed("json" as const)
    : value === "csv"
    ? Effect.succeed("csv" as const)
    : Effect.fail(new BadRequest({ field: "format", message: `format must be json or csv, got "${value}"` }))

const unavailable = () => new ServiceUnavailable({ message: "The usage ledger is unreachable; try again shortly" })

/**
 * `GET /v1/usage`: defaults to today (UTC); both ends inclusive. `budgetsNow` is the budgets' state
 * beside the spend (the budget guard's, composed in `http/UsageHttp.ts`: usage does not depend on budget).
 */
export const totals = <B, E, R>(params: {
  readonly from?: string | undefined
  readonly to?: string | undefined
  readonly groupBy?: string | undefined
}, budgetsNow: Effect.Effect<B, E, R>) =>
  Effect.gen(function*() {
    const repo = yield* UsageRepo
    const today = periodOf("daily", new Date(yield* Clock.currentTimeMillis))
    const from = yield* parseDay("from", params.from, today)
    const to = yield* parseDay("to", params.to, today)
    if (from > to) return yield* new BadRequest({ field: "from", message: `from (${from}) is after to (${to})` })
    const groupBy = groupings.find((g) => g === (params.groupBy ?? "day"))
    if (groupBy === undefined) {
      return yield* new BadRequest({ field: "groupBy", message: `groupBy must be one of day, month, model, caller, got "${params.groupBy}"` })
    }
    const [report, budgets] = yield* Effect.all([
      repo.totals(from, to, groupBy).pipe(Effect.mapError(unavailable)),
      budgetsNow.pipe(Effect.mapError(unavailable))
    ], { concurrency: 2 })
    return { from, to, groupBy, groups: report.groups, total: report.total, budgets }
  })

/** A ledger row as `/v1/usage/calls` shows it. */
export const toCall = (r: UsageRecord) => ({
  id: r.id,
  createdAt: r.createdAt.toISOString(),
  model: r.model,
  provider: r.provider,
  status: r.status,
  errorCode: r.errorCode,
  attempt: r.attempt,
  latencyMs: r.latencyMs,
  promptTokens: r.promptTokens,
  completionTokens: r.completionTokens,
  totalTokens: r.totalTokens,
  costUsd: Option.getOrNull(r.costUsd),
  costSource: r.costSource,
  requestId: r.requestId,
  purpose: r.purpose,
  caller: r.caller
})

const statuses = ["success", "error"] as const

const parseFilter = (params: CallParams) =>
  Effect.gen(function*() {
    const status = statuses.find((s) => s === params.status)
    if (params.status !== undefined && params.status !== "" && status === undefined) {
      return yield* new BadRequest({ field: "status", message: `status must be success or error, got "${params.status}"` })
    }
    const given = (v: string | undefined) => (v === undefined || v === "" ? undefined : v)
    const caller = given(params.caller)
    if (caller !== undefined && !callerNamePattern.test(caller)) {
      return yield* new BadRequest({ field: "caller", message: "caller must be a caller's name: letters, digits, \"_\", \".\" or \"-\"" })
    }
    return { model: given(params.model), status, purpose: given(params.purpose), caller } satisfies CallFilter
  })

export interface CallParams {
  readonly limit?: string | undefined
  readonly before?: string | undefined
  readonly model?: string | undefined
  readonly status?: string | undefined
  readonly purpose?: string | undefined
  readonly caller?: string | undefined
}

/** `GET /v1/usage/calls`: newest first, `before` being the previous page's cursor. */
export const calls = (params: CallParams) =>
  Effect.gen(function*() {
    const repo = yield* UsageRepo
    const limit = params.limit === undefined ? 50 : Number(params.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      return yield* new BadRequest({ field: "limit", message: `limit must be a whole number from 1 to 500, got "${params.limit}"` })
    }
    const before = params.before ?? null
    if (before !== null && Option.isNone(decodeCursor(before))) {
      return yield* new BadRequest({ field: "before", message: "before must be a nextCursor returned by this endpoint" })
    }
    const filter = yield* parseFilter(params)
    const page = yield* repo.recent(limit, before, filter).pipe(Effect.mapError(unavailable))
    return { calls: page.rows.map(toCall), nextCursor: page.nextCursor }
  })

const groupColumns: ReadonlyArray<Csv.Column<UsageGroup>> = [
  { name: "key", kind: "text", get: (g) => g.key },
  { name: "calls", kind: "number", get: (g) => g.calls },
  { name: "failedCalls", kind: "number", get: (g) => g.failedCalls },
  { name: "unknownCostCalls", kind: "number", get: (g) => g.unknownCostCalls },
  { name: "promptTokens", kind: "number", get: (g) => g.promptTokens },
  { name: "completionTokens", kind: "number", get: (g) => g.completionTokens },
  { name: "totalTokens", kind: "number", get: (g) => g.totalTokens },
  { name: "costUsd", kind: "number", get: (g) => Money.format(g.costUsd) }
]

type Call = ReturnType<typeof toCall>

const callColumns: ReadonlyArray<Csv.Column<Call>> = [
  { name: "id", kind: "text", get: (c) => c.id },
  { name: "createdAt", kind: "text", get: (c) => c.createdAt },
  { name: "model", kind: "text", get: (c) => c.model },
  { name: "provider", kind: "text", get: (c) => c.provider },
  { name: "status", kind: "text", get: (c) => c.status },
  { name: "errorCode", kind: "text", get: (c) => c.errorCode },
  { name: "attempt", kind: "number", get: (c) => c.attempt },
  { name: "latencyMs", kind: "number", get: (c) => c.latencyMs },
  { name: "promptTokens", kind: "number", get: (c) => c.promptTokens },
  { name: "completionTokens", kind: "number", get: (c) => c.completionTokens },
  { name: "totalTokens", kind: "number", get: (c) => c.totalTokens },
  { name: "costUsd", kind: "number", get: (c) => c.costUsd === null ? null : Money.format(c.costUsd) },
  { name: "costSource", kind: "text", get: (c) => c.costSource },
  { name: "requestId", kind: "text", get: (c) => c.requestId },
  { name: "purpose", kind: "text", get: (c) => c.purpose },
  { name: "caller", kind: "text", get: (c) => c.caller }
]

/** `GET /v1/usage`, as JSON or (`format=csv`) as a spreadsheet's rows with the same figures. */
export const totalsIn = <B, E, R>(params: Parameters<typeof totals>[0] & { readonly format?: string | undefined }, budgetsNow: Effect.Effect<B, E, R>) =>
  Effect.gen(function*() {
    const format = yield* parseFormat(params.format)
    const report = yield* totals(params, budgetsNow)
    if (format === "json") return report
    const rows = [...report.groups, { key: "total", ...report.total }]
    return Csv.response(Csv.render(groupColumns, rows), `usage-${report.from}-${report.to}-by-${report.groupBy}.csv`)
  })

/** `GET /v1/usage/calls`, as JSON or (`format=csv`) one row per call, the next cursor in a header. */
export const callsIn = (params: CallParams & { readonly format?: string | undefined }) =>
  Effect.gen(function*() {
    const format = yield* parseFormat(params.format)
    const page = yield* calls(params)
    if (format === "json") return page
    return Csv.response(
      Csv.render(callColumns, page.calls),
      "usage-calls.csv",
      page.nextCursor === null ? {} : { "x-next-cursor": page.nextCursor }
    )
  })
