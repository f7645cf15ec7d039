import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { BigDecimal, Option, ParseResult, Schema } from "effect"
import { BadRequest, ServiceUnavailable } from "../domain/ApiErrors.js"
import * as Money from "../domain/Money.js"
import { Authorization } from "../http/Authorization.js"

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

export class UsageApi extends HttpApiGroup.make("usage")
  .add(
    HttpApiEndpoint.get("totals", "/v1/usage")
      .setUrlParams(Schema.Struct({
        from: Schema.optional(Schema.String).annotations({ description: "YYYY-MM-DD (UTC), inclusive; default today" }),
        to: Schema.optional(Schema.String).annotations({ description: "YYYY-MM-DD (UTC), inclusive; default today" }),
        groupBy: Schema.optional(Schema.String).annotations({ description: "day | month | model | caller; default day (caller: `(none)` groups rows without one)" }),
        format: Schema.optional(Schema.String).annotations({
          description: "json (default) or csv: one row per group and a last row keyed `total`, costs as exact decimal text"
        })
      }))
      .addSuccess(UsageReport)
      .addError(BadRequest)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Summary, "Calls, failures, unknown costs, tokens and exact cost per group, with each budget's spend")
  )
  .add(
    HttpApiEndpoint.get("calls", "/v1/usage/calls")
      .setUrlParams(Schema.Struct({
        limit: Schema.optional(Schema.String).annotations({ description: "1 to 500; default 50" }),
        before: Schema.optional(Schema.String).annotations({ description: "nextCursor of the previous page" }),
        caller: Schema.optional(Schema.String).annotations({ description: "Only this caller's calls" }),
        model: Schema.optional(Schema.String).annotations({ description: "Only calls to this model" }),
        status: Schema.optional(Schema.String).annotations({ description: "success | error: only calls with this status" }),
        purpose: Schema.optional(Schema.String).annotations({ description: "Only calls made for this purpose (summary, summary-part, ...)" }),
        format: Schema.optional(Schema.String).annotations({
          description: "json (default) or csv: one row per call, an unknown cost as an empty cell; the next page's cursor in `X-Next-Cursor`"
        })
      }))
      .addSuccess(LedgerPage)
      .addError(BadRequest)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Summary, "The latest ledger rows, newest first, optionally filtered")
  )
  .middleware(Authorization)
{}
