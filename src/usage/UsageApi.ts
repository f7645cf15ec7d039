import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as OpenApi from "@effect/platform/OpenApi"
import { BigDecimal, identity, Option, ParseResult, Predicate, Schema } from "effect"
import { BadRequest, ServiceUnavailable } from "../domain/ApiErrors.js"
import { callerNamePattern } from "../domain/Caller.js"
import * as Money from "../domain/Money.js"
import { Authorization } from "../http/Authorization.js"
import { decodeCursor } from "./UsageQueries.js"

/** Money on the wire: exact decimal text such as "0.00002415", never a JSON number. */
export const Usd = Schema.transformOrFail(
  Schema.String.pipe(Schema.pattern(/^-?\d+(\.\d+)?$/)),
  Schema.BigDecimalFromSelf,
  {
    strict: true,
    decode: (text, _, ast) =>
      Option.match(BigDecimal.fromString(text), {
        onNone: () => ParseResult.fail(new ParseResult.Type(ast, text, "not a decimal")),
        onSome: (d) => ParseResult.succeed(BigDecimal.normalize(d))
      }),
    encode: (d) => ParseResult.succeed(Money.format(d))
  }
).annotations({ identifier: "Usd", description: "USD as exact decimal text", examples: [BigDecimal.unsafeFromString("0.00002415")] })

const Totals = {
  calls: Schema.Int,
  failedCalls: Schema.Int,
  unknownCostCalls: Schema.Int.annotations({ description: "Calls whose cost neither the provider nor the price table knew; not counted in costUsd" }),
  promptTokens: Schema.Int,
  completionTokens: Schema.Int,
  totalTokens: Schema.Int,
  costUsd: Usd
}

export const UsageGroup = Schema.Struct({ key: Schema.String, ...Totals })

export const BudgetSpend = Schema.Struct({
  budget: Schema.Literal("daily", "monthly"),
  caller: Schema.optional(Schema.String).annotations({ description: "Set on a caller's own budget (CALLER_BUDGETS_MONTHLY_USD)" }),
  kind: Schema.Literal("alert", "hard"),
  limitUsd: Usd,
  spentUsd: Usd,
  reservedUsd: Usd,
  levelsAlerted: Schema.Array(Schema.String)
})

export const UsageReport = Schema.Struct({
  from: Schema.String,
  to: Schema.String,
  groupBy: Schema.Literal("day", "month", "model", "caller"),
  groups: Schema.Array(UsageGroup),
  total: Schema.Struct(Totals),
  budgets: Schema.Array(BudgetSpend)
})

export const LedgerCall = Schema.Struct({
  id: Schema.String,
  createdAt: Schema.String,
  model: Schema.String,
  provider: Schema.NullOr(Schema.String),
  status: Schema.Literal("success", "error"),
  errorCode: Schema.NullOr(Schema.String),
  attempt: Schema.Int,
  latencyMs: Schema.Int,
  promptTokens: Schema.Int,
  completionTokens: Schema.Int,
  totalTokens: Schema.Int,
  costUsd: Schema.NullOr(Usd),
  costSource: Schema.Literal("provider", "pricing", "unknown"),
  requestId: Schema.NullOr(Schema.String),
  purpose: Schema.NullOr(Schema.String),
  caller: Schema.NullOr(Schema.String).annotations({ description: "The name of the bearer token that made the call" })
})

export const LedgerPage = Schema.Struct({
  calls: Schema.Array(LedgerCall),
  nextCursor: Schema.NullOr(Schema.String).annotations({ description: "Pass as `before` for the next (older) page" })
})

/** A query parameter given empty counts as not given. */
const given = (s: string | undefined): s is string => s !== undefined && s !== ""

const blankIsAbsent = <A>(schema: Schema.Schema<A, string>) =>
  Schema.optionalToOptional(Schema.UndefinedOr(Schema.String), schema, { decode: Option.filter(given), encode: identity })

/** A parameter that is one of `values`; the message names it and what was given. */
const oneOf = <const L extends ReadonlyArray<string>>(field: string, values: L, expected = `one of ${values.join(", ")}`) =>
  Schema.compose(
    Schema.String,
    Schema.Literal(...values).annotations({ message: (issue) => ({ message: `${field} must be ${expected}, got "${String(issue.actual)}"`, override: true }) }),
    { strict: false }
  )

const Day = (field: "from" | "to") =>
  Schema.String.pipe(Schema.filter((value) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value)
    const date = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null
    return (date !== null && date.toISOString().slice(0, 10) === value) || `${field} must be a date as YYYY-MM-DD, got "${value}"`
  }))

const Format = oneOf("format", ["json", "csv"], "json or csv")

/** `format`: json when not given. */
const format = Schema.optionalToRequired(Schema.UndefinedOr(Schema.String), Format, {
  decode: (text) => Option.getOrElse(Option.filter(text, given), () => "json"),
  encode: Option.some
})

export const TotalsParams = Schema.Struct({
  from: blankIsAbsent(Day("from")).annotations({ description: "YYYY-MM-DD (UTC), inclusive; default today" }),
  to: blankIsAbsent(Day("to")).annotations({ description: "YYYY-MM-DD (UTC), inclusive; default today" }),
  groupBy: Schema.optionalWith(oneOf("groupBy", ["day", "month", "model", "caller"]), { default: () => "day" as const }).annotations({
    description: "day | month | model | caller; default day (caller: `(none)` groups rows without one)"
  }),
  format: format.annotations({ description: "json (default) or csv: one row per group and a last row keyed `total`, costs as exact decimal text" })
})

const Limit = Schema.transformOrFail(Schema.String, Schema.Int, {
  strict: true,
  decode: (text, _, ast) => {
    const n = Number(text)
    return Number.isInteger(n) && n >= 1 && n <= 500
      ? ParseResult.succeed(n)
      : ParseResult.fail(new ParseResult.Type(ast, text, `limit must be a whole number from 1 to 500, got "${text}"`))
  },
  encode: (n) => ParseResult.succeed(String(n))
})

const Cursor = Schema.String.pipe(Schema.filter((s) => Option.isSome(decodeCursor(s)) || "before must be a nextCursor returned by this endpoint"))

const CallerName = Schema.String.pipe(Schema.filter((s) => callerNamePattern.test(s) || `caller must be a caller's name: letters, digits, "_", "." or "-"`))

export const CallsParams = Schema.Struct({
  limit: Schema.optionalWith(Limit, { default: () => 50 }).annotations({ description: "1 to 500; default 50" }),
  // Given empty, it is checked like any other value (and refused).
  before: Schema.optionalToOptional(Schema.UndefinedOr(Schema.String), Cursor, { decode: Option.filter(Predicate.isString), encode: identity })
    .annotations({ description: "nextCursor of the previous page" }),
  caller: blankIsAbsent(CallerName).annotations({ description: "Only this caller's calls" }),
  model: blankIsAbsent(Schema.String).annotations({ description: "Only calls to this model" }),
  status: blankIsAbsent(oneOf("status", ["success", "error"], "success or error")).annotations({ description: "success | error: only calls with this status" }),
  purpose: blankIsAbsent(Schema.String).annotations({ description: "Only calls made for this purpose (summary, summary-part, ...)" }),
  format: format.annotations({
    description: "json (default) or csv: one row per call, an unknown cost as an empty cell; the next page's cursor in `X-Next-Cursor`"
  })
})

/**
 * A query parameter that does not decode is a `BadRequest` naming it, with the message its schema
 * gives, rather than the platform's generic decode error: checked before the handler runs.
 */
export class UsageParams extends HttpApiMiddleware.Tag<UsageParams>()("UsageParams", { failure: BadRequest }) {}

export class UsageApi extends HttpApiGroup.make("usage")
  .add(
    HttpApiEndpoint.get("totals", "/v1/usage")
      .setUrlParams(TotalsParams)
      .addSuccess(UsageReport)
      .addError(BadRequest)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Summary, "Calls, failures, unknown costs, tokens and exact cost per group, with each budget's spend")
  )
  .add(
    HttpApiEndpoint.get("calls", "/v1/usage/calls")
      .setUrlParams(CallsParams)
      .addSuccess(LedgerPage)
      .addError(BadRequest)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Summary, "The latest ledger rows, newest first, optionally filtered")
  )
  // The last listed runs first: the token is checked before the parameters.
  .middleware(UsageParams)
  .middleware(Authorization)
{}
