import { Context, Effect, Layer } from "effect"
import { Pool } from "undici"
import { Config } from "../Config.js"

/**
 * The one pool of keep-alive connections to `OPENROUTER_BASE_URL`, shared by the summaries'
 * client, its key check and the OpenAI-compatible gateway (the layer is built once per graph), and
 * closed with its layer.
 */
export class UpstreamPool extends Context.Tag("UpstreamPool")<UpstreamPool, {
  readonly pool: Pool
  /** The base URL's path, without a trailing slash, to put before `/chat/completions`. */
  readonly basePath: string
}>() {
  static readonly layer: Layer.Layer<UpstreamPool, never, Config> = Layer.scoped(
    UpstreamPool,
    Effect.gen(function*() {
      const { openrouter, rateLimit } = yield* Config
      const url = new URL(openrouter.baseUrl)
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new Pool(url.origin, {
            // Every call the limiter lets through, plus room for the key check and `/generation`
            // lookups, which do not wait for a permit.
            connections: Math.max(rateLimit.maxConcurrency, 8) + 4,
            keepAliveTimeout: 30_000,
            headersTimeout: openrouter.timeoutMs,
            bodyTimeout: openrouter.timeoutMs
          })
        ),
        // Requests still running finish first; the HTTP server has stopped taking new ones by then.
        (pool) => Effect.promise(() => pool.close())
      )
      return { pool, basePath: url.pathname.replace(/\/+$/, "") }
    })
  )
}
