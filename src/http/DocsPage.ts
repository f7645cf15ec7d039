import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer } from "effect"
import { Api } from "./Api.js"

/**
 * The Swagger page of the API, built from the platform's own module. That module holds about 2 MB
 * of Swagger UI's script and the page is as large again, so both are loaded with the first
 * `GET /docs`, not at start: a server nobody reads the docs of does not hold them.
 */
const swaggerPage: Effect.Effect<HttpServerResponse.HttpServerResponse> = Effect.gen(function*() {
  const Swagger = yield* Effect.promise(() => import("@effect/platform/HttpApiSwagger"))
  const { HttpRouter } = yield* Effect.promise(() => import("@effect/platform/HttpLayerRouter"))
  // The module only hands its page to a router: this one keeps the handler it is given.
  let page: Effect.Effect<HttpServerResponse.HttpServerResponse> = Effect.die(new Error("the Swagger module added no page"))
  const keep = { add: (_method: string, _path: string, handler: typeof page) => Effect.sync(() => { page = handler }) }
  yield* Layer.build(Swagger.layerHttpLayerRouter({ api: Api, path: "/docs" })).pipe(
    Effect.provideService(HttpRouter, keep as unknown as HttpLayerRouter.HttpRouter),
    Effect.scoped
  )
  return yield* page
})

export const DocsPageLive = HttpApiBuilder.Router.use((router) =>
  Effect.flatMap(Effect.cached(swaggerPage), (page) => router.get("/docs", page))
)
