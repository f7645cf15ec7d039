import { HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Metric } from "effect"
import { taggedCounter } from "../metrics/TaggedCounter.js"

const requests = taggedCounter(Metric.counter("http_requests_total", { description: "HTTP requests by route and status" }), "route", "status")

const knownRoutes = ["/v1/chat/completions", "/v1/models", "/v1/summaries", "/v1/usage/calls", "/v1/usage", "/health/ready", "/health", "/metrics", "/openapi.json", "/docs", "/dashboard"]

// Unknown paths share one label, so a scanner cannot blow up the metric's cardinality.
const routeOf = (url: string) => {
  const path = url.split("?")[0] ?? ""
  return knownRoutes.find((r) => path === r || path.startsWith(`${r}/`)) ?? "other"
}

/** A request id on every log line of a request (taken from `X-Request-Id` or made), and the request counted. */
export const requestContext = HttpMiddleware.make((app) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const given = request.headers["x-request-id"]
    const requestId = given !== undefined && /^[\w.:-]{1,100}$/.test(given) ? given : crypto.randomUUID()
    const response = yield* app.pipe(
      Effect.annotateLogs({ requestId, method: request.method, route: routeOf(request.url) })
    )
    yield* Metric.increment(requests(routeOf(request.url), String(response.status)))
    return HttpServerResponse.setHeader(response, "x-request-id", requestId)
  })
)
