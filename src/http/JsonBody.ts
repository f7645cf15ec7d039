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

/** Why a text is not JSON, in V8's words ("Unexpected token 'N', ... is not valid JSON"), made printable and short. */
const parseProblem = (text: string): string | undefined => {
  if (text.trim() === "") return "the body is empty; expected a JSON object"
  try {
    JSON.parse(text)
    return undefined
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const printable = message.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    return printable.length > 200 ? `${printable.slice(0, 200)}...` : printable
  }
}

const refuse = (status: number, body: Record<string, string>) => HttpServerResponse.unsafeJson(body, { status })

// OpenAI clients read only OpenAI's error body, so the gateway's refusals take that shape.
const openAiGateway = "/v1/chat/completions"
const refuseFor = (url: string, status: number, body: { readonly _tag: string; readonly message: string; readonly field?: string }) =>
  url.split("?")[0] === openAiGateway
    ? HttpServerResponse.unsafeJson({
      error: { message: body.message, type: "invalid_request_error", param: body.field ?? null, code: status === 415 ? "unsupported_media_type" : "invalid_request" }
    }, { status })
    : refuse(status, body)

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
      return refuseFor(request.url, 415, { _tag: "UnsupportedMediaType", message: "The request body must be JSON (Content-Type: application/json)" })
    }
    const text = yield* request.text.pipe(Effect.option)
    if (text._tag === "Some" && depthOf(text.value) > maxDepth) {
      return refuseFor(request.url, 400, { _tag: "BadRequest", field: "body", message: `The JSON body nests deeper than ${maxDepth} levels` })
    }
    // The platform's own parse failure is an empty 400; the caller deserves to know what is wrong.
    const problem = text._tag === "Some" ? parseProblem(text.value) : undefined
    if (problem !== undefined) return refuseFor(request.url, 400, { _tag: "BadRequest", field: "body", message: `The body is not valid JSON: ${problem}` })
    return yield* app
  })
)
