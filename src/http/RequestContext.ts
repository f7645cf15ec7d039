import type * as Headers from "@effect/platform/Headers"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Metric, MetricBoundaries, type Redacted } from "effect"
import { taggedMetric } from "../metrics/TaggedMetric.js"
import { refusedBeforeBody } from "./Authorization.js"
import { limitBody } from "./BodyLimit.js"
import { refusedJson } from "./JsonBody.js"
import { methodRefusal, routes } from "./Methods.js"

const requests = taggedMetric(Metric.counter("http_requests_total", { description: "HTTP requests by route and status" }), "route", "status")

const durations = taggedMetric(
  Metric.histogram(
    "http_request_duration_seconds",
    MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]),
    "Time from a request's arrival to its answer, in seconds, by route and status"
  ),
  "route",
  "status"
)

const knownRoutes = [...routes.map((r) => r.path), "/dashboard"].sort((a, b) => b.length - a.length)

// Unknown paths share one label, so a scanner cannot blow up the metric's cardinality.
const routeOf = (path: string) => knownRoutes.find((r) => path === r || (r !== "/" && path.startsWith(`${r}/`))) ?? "other"

const pathOf = (url: string) => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

const wellFormed = /^[\w.:-]{1,100}$/

export interface GateSettings {
  readonly callers: ReadonlyArray<{ readonly name: string; readonly token: Redacted.Redacted<string> }>
  readonly maxInputBytes: number
  /** Routes whose bodies have a limit of their own (a summary job's body is a batch of summaries' bodies). */
  readonly bodyLimits: ReadonlyArray<{ readonly path: string; readonly maxBytes: number; readonly setting: string }>
  /** Whether each answer is logged (LOG_LEVEL debug or below): otherwise no log effect is built per request. */
  readonly logAnswers: boolean
}

/**
 * Every request's way in, in one middleware so that the path, the route and the headers are
 * worked out once: the request id, then the method (405), the token before any body byte is
 * read (401), the body's size (413) and form (415, 400), then the routes.
 *
 * A request id is on every response and on every log line of the request: the caller's
 * `X-Request-Id` when it is well-formed (letters, digits, `_.:-`, up to 100), a fresh UUID
 * otherwise. Routed responses are sent before a middleware sees them, so the header is added by a
 * pre-response handler; the refusals made here get it directly.
 */
export const gate = (settings: GateSettings) => {
  const refusedAuth = refusedBeforeBody(settings.callers)
  const answer = <E, R>(app: HttpApp.Default<E, R>, request: HttpServerRequest.HttpServerRequest, headers: Headers.Headers, path: string) => {
    const refusal = methodRefusal(path, request.method) ?? refusedAuth(path, headers["authorization"])
    if (refusal !== undefined) return Effect.succeed(refusal)
    const own = settings.bodyLimits.find((limit) => limit.path === path)
    const limit = own ?? { maxBytes: settings.maxInputBytes, setting: "MAX_INPUT_BYTES" }
    return Effect.flatMap(limitBody(request, headers, limit.maxBytes, limit.setting), (limited) =>
      HttpServerResponse.isServerResponse(limited)
        ? Effect.succeed(limited)
        : Effect.flatMap(refusedJson(limited, headers, path), (refused) =>
          refused !== undefined
            ? Effect.succeed(refused)
            : limited === request
            ? app
            : Effect.provideService(app, HttpServerRequest.HttpServerRequest, limited)))
  }
  return HttpMiddleware.make((app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const startedAt = performance.now()
      // Read once: each read of `request.headers` copies the headers into a new object.
      const headers = request.headers
      const path = pathOf(request.url)
      const given = headers["x-request-id"]
      const requestId = given !== undefined && wellFormed.test(given) ? given : crypto.randomUUID()
      const route = routeOf(path)
      return HttpApp.appendPreResponseHandler((_, response) => Effect.succeed(HttpServerResponse.setHeader(response, "x-request-id", requestId))).pipe(
        Effect.zipRight(answer(app, request, headers, path)),
        Effect.tap((response) => {
          const status = String(response.status)
          const seconds = (performance.now() - startedAt) / 1000
          requests(route, status).unsafeUpdate(1, [])
          durations(route, status).unsafeUpdate(seconds, [])
          return !settings.logAnswers ? Effect.void : Effect.logDebug("HTTP request answered").pipe(Effect.annotateLogs({ status: response.status, durationMs: Math.round(seconds * 1000) }))
        }),
        Effect.map((response) => HttpServerResponse.setHeader(response, "x-request-id", requestId)),
        Effect.annotateLogs({ requestId, method: request.method, route })
      )
    })
  )
}
