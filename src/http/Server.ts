import { HttpApiBuilder, HttpApiSwagger, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { createServer } from "node:http"
import { Config } from "../Config.js"
import { Api } from "./Api.js"
import { AuthorizationLive } from "./Authorization.js"
import { bodyLimit } from "./BodyLimit.js"
import { SummariesHttp } from "../summarize/SummariesHttp.js"
import { UsageHttp } from "../usage/UsageHttp.js"
import { HealthHttp } from "./HealthHttp.js"
import { requestContext } from "./RequestContext.js"

export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([SummariesHttp, UsageHttp, HealthHttp]),
  Layer.provide(AuthorizationLive)
)

/** Routes, docs, OpenAPI document and middleware, on whatever `HttpServer` is provided. */
export const HttpAppLive = Layer.unwrapEffect(Effect.gen(function*() {
  const { server } = yield* Config
  return HttpApiBuilder.serve((app) => requestContext(bodyLimit(server.maxInputBytes)(app))).pipe(
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
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

/**
 * The Node server on HOST:PORT. On shutdown it stops accepting, lets requests in flight finish for
 * up to `SHUTDOWN_GRACE_MS`, then closes what is left.
 */
export const HttpServerLive = Layer.unwrapEffect(Effect.gen(function*() {
  const { server: settings } = yield* Config
  const server = createServer()
  // Built after the server, so this finalizer runs first: the grace period starts with the shutdown.
  const graceTimer = Layer.scopedDiscard(Effect.addFinalizer(() =>
    Effect.sync(() => setTimeout(() => server.closeAllConnections(), settings.shutdownGraceMs).unref())
  ))
  return Layer.provideMerge(graceTimer, NodeHttpServer.layer(() => server, { host: settings.host, port: settings.port }))
}))

export const HttpLive = HttpAppLive.pipe(
  Layer.provideMerge(Layer.effectDiscard(logStart)),
  Layer.provide(HttpServerLive)
)
