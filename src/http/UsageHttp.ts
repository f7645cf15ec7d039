import { HttpApiBuilder } from "@effect/platform"
import { budgetStatus } from "../budget/BudgetGuard.js"
import * as UsageHandlers from "../usage/UsageHandlers.js"
import { Api } from "./Api.js"

/** `/v1/usage`: the ledger's figures (usage) with the budgets' state (budget), composed here. */
export const UsageHttp = HttpApiBuilder.group(Api, "usage", (handlers) =>
  handlers
    .handle("totals", ({ urlParams }) => UsageHandlers.totalsIn(urlParams, budgetStatus))
    .handle("calls", ({ urlParams }) => UsageHandlers.callsIn(urlParams)))
