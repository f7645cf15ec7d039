import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Api } from "./Api.js"

export interface Route {
  readonly path: string
  readonly methods: ReadonlyArray<string>
}

/** Every path the service serves and the methods each takes, read from the API itself plus the docs. */
export const routes: ReadonlyArray<Route> = (() => {
  const byPath = new Map<string, Set<string>>([["/docs", new Set(["GET"])], ["/openapi.json", new Set(["GET"])]])
  HttpApi.reflect(Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      const methods = byPath.get(endpoint.path) ?? new Set<string>()
      byPath.set(endpoint.path, methods.add(endpoint.method))
    }
  })
  return [...byPath].map(([path, methods]) => ({ path, methods: [...methods].sort() }))
})()

const allowed = new Map(routes.map((r) => [r.path, r.methods]))

/**
 * A known path with a method it does not take gets 405 and `Allow` (rather than reaching the JSON
 * check and a 415, or the router and a 404). HEAD goes where GET goes; OPTIONS answers `Allow`.
 * Undefined when the method is one the path takes, or the path is not known here.
 */
export const methodRefusal = (path: string, method: string): HttpServerResponse.HttpServerResponse | undefined => {
  const methods = allowed.get(path)
  if (methods === undefined || methods.includes(method)) return undefined
  if (method === "HEAD" && methods.includes("GET")) return undefined
  const allow = methods.includes("GET") ? [...methods, "HEAD", "OPTIONS"] : [...methods, "OPTIONS"]
  if (method === "OPTIONS") return HttpServerResponse.empty({ status: 204, headers: { allow: allow.join(", ") } })
  return HttpServerResponse.unsafeJson(
    { _tag: "MethodNotAllowed", message: `${method} is not allowed on ${path}; use ${methods.join(" or ")}` },
    { status: 405, headers: { allow: allow.join(", ") } }
  )
}
