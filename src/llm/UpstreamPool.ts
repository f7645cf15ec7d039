import { Context, Effect, Layer } from "effect"
import { type Dispatcher, Pool } from "undici"
import { Config } from "../Config.js"

/** A request's options, and what to call as it is written to a connected socket. */
export type WrittenOptions = Dispatcher.RequestOptions & { readonly onWritten?: () => void }

/**
 * A dispatcher that calls a request's `onWritten` as undici writes it (its `onRequestStart`, once a
 * connection is assigned), not as it is handed over: that may wait for a connection. `compose`
 * answers a proxy of `pool` itself with only its `dispatch` replaced, hence the type kept.
 */
export const reportingWrites = <D extends Dispatcher>(pool: D): D =>
  pool.compose((dispatch) => (options, handler) => {
    const onWritten = (options as WrittenOptions).onWritten
    if (onWritten === undefined) return dispatch(options, handler)
    return dispatch(options, {
      onRequestStart: (controller, context) => {
        onWritten()
        handler.onRequestStart?.(controller, context)
      },
      onRequestUpgrade: (controller, statusCode, headers, socket) => handler.onRequestUpgrade?.(controller, statusCode, headers, socket),
      onResponseStart: (controller, statusCode, headers, statusMessage) => handler.onResponseStart?.(controller, statusCode, headers, statusMessage),
      onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
      onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
      onResponseError: (controller, error) => handler.onResponseError?.(controller, error)
    })
  }) as unknown as D

/**
 * The one pool of keep-alive connections to `OPENROUTER_BASE_URL`, shared by the summaries'
 * client, its key check and the OpenAI-compatible gateway (the layer is built once per graph), and
 * closed with its layer.
 */
export class UpstreamPool extends Context.Tag("UpstreamPool")<UpstreamPool, {
  /** Requests given `onWritten` (`WrittenOptions`) report when they reach the wire. */
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
      return { pool: reportingWrites(pool), basePath: url.pathname.replace(/\/+$/, "") }
    })
  )
}
