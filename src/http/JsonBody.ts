import { HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"

const maxDepth = 64

/** How deeply a JSON text nests, strings skipped; a linear scan, cheaper than the parse after it. */
const depthOf = (text: string): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) deepest = Math.max(deepest, ++depth)
    else if (c === 125 || c === 93) depth--
  }
  return deepest
}

const refuse = (status: number, body: Record<string, string>) => HttpServerResponse.unsafeJson(body, { status })

/**
 * The API takes JSON only. Other bodies (form data, multipart) would otherwise reach the
 * platform's decoders, and a malformed multipart body or a JSON text nested thousands deep there
 * ends in a 500 or a connection left open instead of an answer.
 */
export const jsonBody = HttpMiddleware.make((app) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "POST" && request.method !== "PUT" && request.method !== "PATCH") return yield* app
    const contentType = request.headers["content-type"] ?? ""
    // The dashboard's login and logout are plain HTML forms.
    if (request.url.startsWith("/dashboard/") && /^application\/x-www-form-urlencoded\s*(;|$)/i.test(contentType)) return yield* app
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      return refuse(415, { _tag: "UnsupportedMediaType", message: "The request body must be JSON (Content-Type: application/json)" })
    }
    const text = yield* request.text.pipe(Effect.option)
    if (text._tag === "Some" && depthOf(text.value) > maxDepth) {
      return refuse(400, { _tag: "BadRequest", field: "body", message: `The JSON body nests deeper than ${maxDepth} levels` })
    }
    return yield* app
  })
)
