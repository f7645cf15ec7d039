import { HttpApiBuilder, HttpApiSwagger, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Option } from "effect"
import { createServer, type Server } from "node:http"
import { Config } from "../Config.js"
import { Api } from "./Api.js"
import { AuthorizationLive } from "./Authorization.js"
import { bodyLimit } from "./BodyLimit.js"
import { jsonBody } from "./JsonBody.js"
import { ChatHttp } from "../gateway/ChatHttp.js"
import { DashboardHttp } from "../dashboard/DashboardHttp.js"
import { SummariesHttp } from "../summarize/SummariesHttp.js"
import { UsageHttp } from "../usage/UsageHttp.js"
import { HealthHttp } from "./HealthHttp.js"
import { requestContext } from "./RequestContext.js"

export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([SummariesHttp, UsageHttp, HealthHttp, ChatHttp]),
  Layer.provide(AuthorizationLive)
)

/** Routes, docs, OpenAPI document and middleware, on whatever `HttpServer` is provided. */
export const HttpAppLive = Layer.unwrapEffect(Effect.gen(function*() {
  const { server } = yield* Config
  return HttpApiBuilder.serve((app) => requestContext(bodyLimit(server.maxInputBytes)(jsonBody(app)))).pipe(
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(DashboardHttp.pipe(Layer.provide(AuthorizationLive))),
    Layer.provide(ApiLive)
  )
}))

const logStart = Effect.gen(function*() {
  const config = yield* Config
  const address = yield* HttpServer.addressFormattedWith(Effect.succeed)
  const ai = !config.llm.aiEnabled
    ? "off (AI_ENABLED=false)"
    : Option.isNone(config.openrouter.apiKey)
    ? "off (no OPENROUTER_API_KEY: every summary is a fallback with reason no_api_key)"
    : `on (${config.openrouter.defaultModel} via ${config.openrouter.baseUrl})`
  yield* Effect.logInfo(`Listening on ${address}; AI ${ai}`)
})

class NodeServer extends Context.Tag("NodeServer")<NodeServer, Server>() {}

const NodeServerLive = Layer.sync(NodeServer, () => createServer())

const HttpServerLive = Layer.unwrapEffect(Effect.gen(function*() {
  const { server: settings } = yield* Config
  const server = yield* NodeServer
  return NodeHttpServer.layer(() => server, { host: settings.host, port: settings.port })
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
  Layer.provideMerge(Layer.effectDiscard(logStart)),
  Layer.provide(HttpServerLive),
  Layer.provide(NodeServerLive)
)
