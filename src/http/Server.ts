import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Effect, Layer, LogLevel, Option } from "effect"
import { createServer, type Server } from "node:http"
import { Config } from "../Config.js"
import { LlmClient } from "../llm/LlmClient.js"
import { Api } from "./Api.js"
import { AuthorizationLive } from "./Authorization.js"
import { DocsPageLive } from "./DocsPage.js"
import { ChatHttp } from "../gateway/ChatHttp.js"
import { DashboardHttp } from "../dashboard/DashboardHttp.js"
import { JobsHttp } from "../jobs/JobsHttp.js"
import type { CannotListen, PortInUse } from "./PortCheck.js"
import { listenError } from "./PortCheck.js"
import { SummariesHttp } from "../summarize/SummariesHttp.js"
import { UsageHttp } from "./UsageHttp.js"
import { HealthHttp } from "./HealthHttp.js"
import { IndexHttp } from "./IndexHttp.js"
import { gate } from "./RequestContext.js"
import * as Spans from "../telemetry/Spans.js"

export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([SummariesHttp, UsageHttp, HealthHttp, ChatHttp, IndexHttp, JobsHttp]),
  Layer.provide(AuthorizationLive)
)

/** Routes, docs, OpenAPI document and middleware, on whatever `HttpServer` is provided. */
export const HttpAppLive = Layer.unwrapEffect(Effect.gen(function*() {
  const { jobs, log, server } = yield* Config
  const bodyLimits = [{ path: "/v1/summary-jobs", maxBytes: jobs.maxBytes, setting: "JOB_MAX_BYTES" }]
  return HttpApiBuilder.serve(gate({ ...server, bodyLimits, logAnswers: LogLevel.lessThanEqual(log.level, LogLevel.Debug) })).pipe(
    HttpMiddleware.withSpanNameGenerator(Spans.httpRequestName),
    Layer.provide(DocsPageLive),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(DashboardHttp.pipe(Layer.provide(AuthorizationLive))),
    Layer.provide(ApiLive)
  )
}))

/**
 * The start line says where the service listens and whether the AI is on; with a key, that is
 * only said once OpenRouter accepted it (`GET {base}/key`), so a wrong or revoked key is named at
 * start rather than found later in fallbacks.
 */
const logStart = Effect.gen(function*() {
  const config = yield* Config
  const llm = yield* LlmClient
  const address = yield* HttpServer.addressFormattedWith(Effect.succeed)
  if (!config.llm.aiEnabled) return yield* Effect.logInfo(`Listening on ${address}; AI off (AI_ENABLED=false)`)
  if (Option.isNone(config.openrouter.apiKey)) {
    return yield* Effect.logInfo(`Listening on ${address}; AI off (no OPENROUTER_API_KEY: every summary is a fallback with reason no_api_key)`)
  }
  const via = `${config.openrouter.defaultModel} via ${config.openrouter.baseUrl}`
  const checked = yield* Effect.timeout(llm.upstreamHealth, "10 seconds").pipe(Effect.option)
  if (Option.isNone(checked)) {
    return yield* Effect.logWarning(`Listening on ${address}; AI on (${via}), but the key check at ${config.openrouter.baseUrl}/key did not answer within 10 s`)
  }
  const health = checked.value
  if (health.ok) return yield* Effect.logInfo(`Listening on ${address}; AI on (${via})`)
  const status = Option.match(health.status, { onNone: () => "", onSome: (s) => ` (${s})` })
  if (health.reason === "key_rejected") {
    return yield* Effect.logError(
      `Listening on ${address}; AI not ready: OpenRouter refused the API key${status}; check OPENROUTER_API_KEY ` +
        "(summaries fall back to the raw diff until it is fixed)"
    )
  }
  yield* Effect.logWarning(
    `Listening on ${address}; AI on (${via}), but the key check at ${config.openrouter.baseUrl}/key failed${status}; ` +
      "summaries fall back while the upstream cannot be reached"
  )
})

class NodeServer extends Context.Tag("NodeServer")<NodeServer, Server>() {}

/**
 * Node's defaults let a slow client hold a connection a long time (a minute for headers, five
 * minutes for a body); these bound it: headers within `HTTP_HEADERS_TIMEOUT_MS`, the whole request
 * within `HTTP_REQUEST_TIMEOUT_MS`, an idle keep-alive connection `HTTP_KEEP_ALIVE_TIMEOUT_MS`.
 * Node checks the first two on an interval, made short here so they hold to about a second.
 */
const NodeServerLive = Layer.effect(NodeServer, Effect.map(Config, ({ server: settings }) =>
  createServer({
    headersTimeout: settings.headersTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1_000, settings.headersTimeoutMs)
  })))

const HttpServerLive = Layer.unwrapEffect(Effect.gen(function*() {
  const { server: settings } = yield* Config
  const server = yield* NodeServer
  return NodeHttpServer.layer(() => server, { host: settings.host, port: settings.port }).pipe(
    // The port can be taken between the check at start and this listen.
    Layer.catchAll((error) => {
      const known = listenError(settings.host, settings.port, error.cause)
      return Layer.fail<ServeError | PortInUse | CannotListen>(known ?? error)
    })
  )
}))

/**
 * Graceful shutdown. Built after the routes, so its finalizer runs before they are taken down:
 * the server stops accepting, requests in flight finish (for up to `SHUTDOWN_GRACE_MS`, then the
 * connections left are closed), and only then do the routes and the services (the ledger's
 * final flush among them) stop.
 */
const GracefulShutdown = Layer.scopedDiscard(Effect.gen(function*() {
  const { server: settings } = yield* Config
  const server = yield* NodeServer
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* Effect.logInfo("Shutting down: no new connections; requests in flight may finish").pipe(
        Effect.annotateLogs("graceMs", settings.shutdownGraceMs)
      )
      const timer = setTimeout(() => server.closeAllConnections(), settings.shutdownGraceMs)
      yield* Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
      clearTimeout(timer)
    })
  )
}))

export const HttpLive = GracefulShutdown.pipe(
  Layer.provideMerge(HttpAppLive),
  // Forked, so a slow key check does not hold back serving.
  Layer.provideMerge(Layer.scopedDiscard(Effect.forkScoped(logStart))),
  Layer.provide(HttpServerLive),
  Layer.provide(NodeServerLive)
)
