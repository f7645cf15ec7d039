import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer } from "effect"
import type { BadRequest } from "../domain/ApiErrors.js"
import { budgetStatus } from "../budget/BudgetGuard.js"
import { CallsParams, TotalsParams, UsageParams } from "../usage/UsageApi.js"
import * as UsageHandlers from "../usage/UsageHandlers.js"
import { Api } from "./Api.js"

const checks = new Map<string, (raw: unknown) => Effect.Effect<unknown, BadRequest>>([
  ["/v1/usage", UsageHandlers.decodeParams(TotalsParams)],
  ["/v1/usage/calls", UsageHandlers.decodeParams(CallsParams)]
])

/** Checks the query of both endpoints with their schemas before the handler runs (see `UsageParams`). */
export const UsageParamsLive = Layer.succeed(UsageParams, Effect.gen(function*() {
  const { route } = yield* HttpRouter.RouteContext
  const check = checks.get(route.path)
  if (check !== undefined) yield* check(yield* HttpServerRequest.ParsedSearchParams)
}))

/** `/v1/usage`: the ledger's figures (usage) with the budgets' state (budget), composed here. */
export const UsageHttp = HttpApiBuilder.group(Api, "usage", (handlers) =>
  handlers
    .handle("totals", ({ urlParams }) => UsageHandlers.totalsOf(urlParams, budgetStatus))
    .handle("calls", ({ urlParams }) => UsageHandlers.callsPageOf(urlParams))).pipe(Layer.provide(UsageParamsLive))
