import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Api } from "../http/Api.js"
import * as UsageHandlers from "./UsageHandlers.js"

export const UsageHttp = HttpApiBuilder.group(Api, "usage", (handlers) =>
  handlers
    .handle("totals", ({ urlParams }) => UsageHandlers.totalsIn(urlParams))
    .handle("calls", ({ urlParams }) => UsageHandlers.callsIn(urlParams)))
