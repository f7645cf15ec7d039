import { HttpApp, HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Metric, MetricBoundaries } from "effect"
import { taggedCounter } from "../metrics/TaggedCounter.js"
import { routes } from "./Methods.js"

const requests = taggedCounter(Metric.counter("http_requests_total", { description: "HTTP requests by route and status" }), "route", "status")

const durationSeconds = Metric.histogram(
  "http_request_duration_seconds",
  MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]),
  "Time from a request's arrival to its answer, in seconds, by route and status"
)
const durations = new Map<string, Metric.Metric.Histogram<number>>()
const durationOf = (route: string, status: string) => {
  const key = `${route} ${status}`
  let metric = durations.get(key)
  if (metric === undefined) {
    metric = durationSeconds.pipe(Metric.tagged("route", route), Metric.tagged("status", status))
    durations.set(key, metric)
  }
  return metric
}

const knownRoutes = [...routes.map((r) => r.path), "/dashboard"].sort((a, b) => b.length - a.length)

// Unknown paths share one label, so a scanner cannot blow up the metric's cardinality.
const routeOf = (url: string) => {
  const path = url.split("?")[0] ?? ""
  return knownRoutes.find((r) => path === r || (r !== "/" && path.startsWith(`${r}/`))) ?? "other"
}

const wellFormed = /^[\w.:-]{1,100}$/

/**
 * A request id on every response and on every log line of the request: the caller's
 * `X-Request-Id` when it is well-formed (letters, digits, `_.:-`, up to 100), a fresh UUID
 * otherwise. Routed responses are sent before a middleware sees them, so the header is added by a
 * pre-response handler; answers made by the middlewares themselves (401, 405, 413, 415, 400) get it here.
 */
export const requestContext = HttpMiddleware.make((app) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const startedAt = yield* Clock.currentTimeMillis
    const given = request.headers["x-request-id"]
    const requestId = given !== undefined && wellFormed.test(given) ? given : crypto.randomUUID()
    const route = routeOf(request.url)
    yield* HttpApp.appendPreResponseHandler((_, response) => Effect.succeed(HttpServerResponse.setHeader(response, "x-request-id", requestId)))
    return yield* Effect.gen(function*() {
      const response = yield* app
      const status = String(response.status)
      const seconds = ((yield* Clock.currentTimeMillis) - startedAt) / 1000
      yield* Metric.increment(requests(route, status))
      yield* Metric.update(durationOf(route, status), seconds)
      yield* Effect.logDebug("HTTP request answered").pipe(Effect.annotateLogs({ status: response.status, durationMs: Math.round(seconds * 1000) }))
      return HttpServerResponse.setHeader(response, "x-request-id", requestId)
    }).pipe(Effect.annotateLogs({ requestId, method: request.method, route }))
  })
)
