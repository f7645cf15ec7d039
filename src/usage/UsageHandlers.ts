import { Clock, Effect, Option, ParseResult, Schema } from "effect"
import { periodOf } from "../domain/Period.js"
import { BadRequest, ServiceUnavailable } from "../domain/ApiErrors.js"
import type { UsageRecord } from "../domain/UsageRecord.js"
import * as Money from "../domain/Money.js"
import * as Csv from "./Csv.js"
import { CallsParams, TotalsParams } from "./UsageApi.js"
import { type CallFilter, type GroupBy, type UsageGroup, UsageRepo } from "./UsageRepo.js"

const unavailable = () => new ServiceUnavailable({ message: "The usage ledger is unreachable; try again shortly" })

/** Query parameters decoded with their schema; the first problem is a `BadRequest` naming the parameter. */
export const decodeParams = <A, I>(schema: Schema.Schema<A, I>) => (raw: unknown): Effect.Effect<A, BadRequest> =>
  Schema.decodeUnknown(schema)(raw).pipe(Effect.mapError((error) => {
    const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
    return new BadRequest({ field: String(issue?.path[0] ?? "query"), message: issue?.message ?? "The query parameters are not valid" })
  }))

/**
 * `GET /v1/usage`: defaults to today (UTC); both ends inclusive. `budgetsNow` is the budgets' state
 * beside the spend (the budget guard's, composed in `http/UsageHttp.ts`: usage does not depend on budget).
 */
export const totals = <B, E, R>(
  params: { readonly from?: string | undefined; readonly to?: string | undefined; readonly groupBy: GroupBy },
  budgetsNow: Effect.Effect<B, E, R>
) =>
  Effect.gen(function*() {
    const repo = yield* UsageRepo
    const today = periodOf("daily", new Date(yield* Clock.currentTimeMillis))
    const from = params.from ?? today
    const to = params.to ?? today
    if (from > to) return yield* new BadRequest({ field: "from", message: `from (${from}) is after to (${to})` })
    const { groupBy } = params
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

/** `GET /v1/usage/calls`: newest first, `before` being the previous page's cursor. */
export const callsOf = (params: Omit<typeof CallsParams.Type, "format">) =>
  Effect.gen(function*() {
    const repo = yield* UsageRepo
    const filter: CallFilter = { model: params.model, status: params.status, purpose: params.purpose, caller: params.caller }
    const page = yield* repo.recent(params.limit, params.before ?? null, filter).pipe(Effect.mapError(unavailable))
    return { calls: page.rows.map(toCall), nextCursor: page.nextCursor }
  })

/** The same from the text of the query (the dashboard's). */
export const calls = (raw: Readonly<Record<string, string | undefined>>) => Effect.flatMap(decodeParams(CallsParams)(raw), callsOf)

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
export const totalsOf = <B, E, R>(params: typeof TotalsParams.Type, budgetsNow: Effect.Effect<B, E, R>) =>
  Effect.gen(function*() {
    const report = yield* totals(params, budgetsNow)
    if (params.format === "json") return report
    const rows = [...report.groups, { key: "total", ...report.total }]
    return Csv.response(Csv.render(groupColumns, rows), `usage-${report.from}-${report.to}-by-${report.groupBy}.csv`)
  })

/** `GET /v1/usage/calls`, as JSON or (`format=csv`) one row per call, the next cursor in a header. */
export const callsPageOf = (params: typeof CallsParams.Type) =>
  Effect.gen(function*() {
    const page = yield* callsOf(params)
    if (params.format === "json") return page
    return Csv.response(
      Csv.render(callColumns, page.calls),
      "usage-calls.csv",
      page.nextCursor === null ? {} : { "x-next-cursor": page.nextCursor }
    )
  })

/** Both from the text of the query (the dashboard's exports). */
export const totalsIn = <B, E, R>(raw: Readonly<Record<string, string | undefined>>, budgetsNow: Effect.Effect<B, E, R>) =>
  Effect.flatMap(decodeParams(TotalsParams)(raw), (params) => totalsOf(params, budgetsNow))
export const callsIn = (raw: Readonly<Record<string, string | undefined>>) => Effect.flatMap(decodeParams(CallsParams)(raw), callsPageOf)
