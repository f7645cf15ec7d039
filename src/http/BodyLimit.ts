import { FileSystem, HttpIncomingMessage, HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect, Option, Stream } from "effect"

const tooLarge = (what: string, maxBytes: number, setting: string) =>
  HttpServerResponse.unsafeJson(
    { _tag: "PayloadTooLarge", message: `The request body is ${what}; the limit is ${maxBytes} bytes (${setting})` },
    { status: 413, headers: { connection: "close" } }
  )

/**
 * A body sent without a length (chunked), read up to `maxBytes`. Past the limit the rest is drained
 * unread rather than the socket destroyed (the platform's `MaxBodySize` destroys it), so the caller
 * still reads the 413.
 */
const readChunked = (request: HttpServerRequest.HttpServerRequest, maxBytes: number) =>
  Effect.async<Option.Option<Buffer>>((resume) => {
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const chunks: Array<Buffer> = []
    let bytes = 0
    let done = false
    const finish = (result: Option.Option<Buffer>) => {
      if (done) return
      done = true
      resume(Effect.succeed(result))
    }
    source.on("data", (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > maxBytes) finish(Option.none())
      else if (!done) chunks.push(chunk)
    })
    source.once("end", () => finish(Option.some(Buffer.concat(chunks))))
    // A client that went away gets no answer; an empty body makes the endpoint answer 400 if anyone is left.
    source.once("error", () => finish(Option.some(Buffer.alloc(0))))
  })

/**
 * The same request, its body now the bytes already read. The platform answers through the request
 * object it created, so this one inherits from it and only shadows the body readers (`json` and
 * `urlParamsBody` read through `text`).
 */
const withBody = (request: HttpServerRequest.HttpServerRequest, body: Buffer): HttpServerRequest.HttpServerRequest =>
  Object.create(request, {
    text: { value: Effect.succeed(body.toString("utf8")) },
    arrayBuffer: { value: Effect.succeed(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)) },
    stream: { value: Stream.succeed(new Uint8Array(body)) }
  })

/**
 * A declared body over the limit gets a polite 413 before any byte is read; a chunked body is read
 * here up to the limit and answered 413 past it, never by dropping the connection.
 */
export const bodyLimit = (maxBytes: number, setting = "MAX_INPUT_BYTES") =>
  HttpMiddleware.make((app) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const limited = app.pipe(Effect.provideService(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(maxBytes))))
      const length = request.headers["content-length"]
      if (length !== undefined) {
        const declared = Number(length)
        return declared > maxBytes ? tooLarge(`${declared} bytes`, maxBytes, setting) : yield* limited
      }
      if (request.headers["transfer-encoding"] === undefined) return yield* limited
      const body = yield* readChunked(request, maxBytes)
      return yield* Option.match(body, {
        onNone: () => Effect.succeed(tooLarge(`over ${maxBytes} bytes`, maxBytes, setting)),
        onSome: (bytes) => Effect.provideService(limited, HttpServerRequest.HttpServerRequest, withBody(request, bytes))
      })
    })
  )

/** `bodyLimit`, with another limit for the routes named (their path, without the query): a summary job's body is a batch of summaries' bodies. */
export const bodyLimitByPath = (maxBytes: number, routes: ReadonlyArray<readonly [path: string, maxBytes: number, setting: string]>) =>
  HttpMiddleware.make((app) => {
    const limited = routes.map(([path, bytes, setting]) => [path, bodyLimit(bytes, setting)(app)] as const)
    const otherwise = bodyLimit(maxBytes)(app)
    return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const path = request.url.split("?")[0]
      return limited.find(([p]) => p === path)?.[1] ?? otherwise
    })
  })
