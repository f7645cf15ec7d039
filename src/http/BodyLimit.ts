import { FileSystem, HttpIncomingMessage, HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"

/**
 * A declared body over the limit gets a polite 413 before any byte is read; a chunked body that
 * grows past it is cut by `MaxBodySize` (the platform then drops the socket, the only option left).
 */
export const bodyLimit = (maxBytes: number) =>
  HttpMiddleware.make((app) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const declared = Number(request.headers["content-length"] ?? "0")
      if (declared > maxBytes) {
        return HttpServerResponse.unsafeJson(
          { _tag: "PayloadTooLarge", message: `The request body is ${declared} bytes; the limit is ${maxBytes} (MAX_INPUT_BYTES)` },
          { status: 413, headers: { connection: "close" } }
        )
      }
      return yield* app.pipe(Effect.provideService(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(maxBytes))))
    })
  )
