import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { Api, version } from "./Api.js"
import { routes } from "./Methods.js"

export const IndexHttp = HttpApiBuilder.group(Api, "index", (handlers) =>
  handlers.handle("index", () =>
    Effect.succeed({
      service: "policy-summarizer",
      version,
      docs: "/docs",
      openapi: "/openapi.json",
      endpoints: routes.flatMap((r) => r.methods.map((m) => `${m} ${r.path}`))
    })))
