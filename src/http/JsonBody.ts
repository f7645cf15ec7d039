import type * as Headers from "@effect/platform/Headers"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"

const maxDepth = 64

/**
 * Whether a parsed JSON value nests deeper than `limit` (the outermost object or array is level 1).
 * Iterative and stopping at the limit, so a hostile body costs no stack and little time; it walks
 * values, not characters, so a large body of long strings costs next to nothing.
 */
const nestsDeeperThan = (value: unknown, limit: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (node === null || typeof node !== "object") continue
    if (depth > limit) return true
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1])
    }
  }
  return false
}

/** The body parsed once, or why it is not JSON in V8's words, made printable and short. */
const parseBody = (text: string): { readonly value: unknown } | { readonly problem: string } => {
  if (text.trim() === "") return { problem: "the body is empty; expected a JSON object" }
  try {
    return { value: JSON.parse(text) }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const printable = message.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    return { problem: printable.length > 200 ? `${printable.slice(0, 200)}...` : printable }
  }
}

const refuse = (status: number, body: Record<string, string>) => HttpServerResponse.unsafeJson(body, { status })

// OpenAI clients read only OpenAI's error body, so the gateway's refusals take that shape.
const openAiGateway = "/v1/chat/completions"
const refuseFor = (path: string, status: number, body: { readonly _tag: string; readonly message: string; readonly field?: string }) =>
  path === openAiGateway
    ? HttpServerResponse.unsafeJson({
      error: { message: body.message, type: "invalid_request_error", param: body.field ?? null, code: status === 415 ? "unsupported_media_type" : "invalid_request" }
    }, { status })
    : refuse(status, body)

/**
 * The API takes JSON only. Other bodies (form data, multipart) would otherwise reach the
 * platform's decoders, and a malformed multipart body or a JSON text nested thousands deep there
 * ends in a 500 or a connection left open instead of an answer. The refusal, or undefined when the
 * request goes on; its body then parsed once, here: the routes read this value (`request.json`)
 * instead of parsing the same text again (a 2 MiB body costs milliseconds of event loop per parse,
 * during which nothing else answers).
 */
export const refusedJson = (
  request: HttpServerRequest.HttpServerRequest,
  headers: Headers.Headers,
  path: string
): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> => {
  if (request.method !== "POST" && request.method !== "PUT" && request.method !== "PATCH") return Effect.succeed(undefined)
  const contentType = headers["content-type"] ?? ""
  // The dashboard's login and logout are plain HTML forms.
  if (path.startsWith("/dashboard/") && /^application\/x-www-form-urlencoded\s*(;|$)/i.test(contentType)) return Effect.succeed(undefined)
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    return Effect.succeed(refuseFor(path, 415, { _tag: "UnsupportedMediaType", message: "The request body must be JSON (Content-Type: application/json)" }))
  }
  return Effect.map(Effect.option(request.text), (text) => {
    if (text._tag === "None") return undefined
    // The platform's own parse failure is an empty 400; the caller deserves to know what is wrong.
    const body = parseBody(text.value)
    if ("problem" in body) {
      return refuseFor(path, 400, { _tag: "BadRequest", field: "body", message: `The body is not valid JSON: ${body.problem}` })
    }
    if (nestsDeeperThan(body.value, maxDepth)) {
      return refuseFor(path, 400, { _tag: "BadRequest", field: "body", message: `The JSON body nests deeper than ${maxDepth} levels` })
    }
    Object.defineProperty(request, "json", { value: Effect.succeed(body.value), configurable: true })
    return undefined
  })
}
