import { Clock, Effect, Option } from "effect"
import { BudgetGuard } from "../budget/BudgetGuard.js"
import { periodOf } from "../budget/Period.js"
import { BadRequest, ServiceUnavailable } from "../domain/ApiErrors.js"
import { callerNamePattern } from "../domain/Caller.js"
import type { UsageRecord } from "../domain/UsageRecord.js"
import { decodeCursor } from "./UsageQueries.js"
import { type GroupBy, UsageRepo } from "./UsageRepo.js"

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

const unavailable = () => new ServiceUnavailable({ message: "The usage ledger is unreachable; try again shortly" })

/** `GET /v1/usage`: defaults to today (UTC); both ends inclusive. */
export const totals = (params: { readonly from?: string | undefined; readonly to?: string | undefined; readonly groupBy?: string | undefined }) =>
  Effect.gen(function*() {
    const repo = yield* UsageRepo
    const guard = yield* BudgetGuard
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
      guard.status.pipe(Effect.mapError(unavailable))
    ], { concurrency: 2 })
    return { from, to, groupBy, groups: report.groups, total: report.total, budgets }
  })

const toCall = (r: UsageRecord) => ({
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
export const calls = (params: { readonly limit?: string | undefined; readonly before?: string | undefined; readonly caller?: string | undefined }) =>
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
    const caller = params.caller
    if (caller !== undefined && !callerNamePattern.test(caller)) {
      return yield* new BadRequest({ field: "caller", message: "caller must be a caller's name: letters, digits, \"_\", \".\" or \"-\"" })
    }
    const page = yield* repo.recent(limit, before, caller).pipe(Effect.mapError(unavailable))
    return { calls: page.rows.map(toCall), nextCursor: page.nextCursor }
  })
