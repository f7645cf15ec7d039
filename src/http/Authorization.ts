import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Option, Redacted } from "effect"
import { timingSafeEqual } from "node:crypto"
import { Config } from "../Config.js"
import { Unauthorized } from "../domain/ApiErrors.js"
import { CurrentCaller } from "../domain/Caller.js"

/**
 * Bearer token on `/v1/*`, naming the caller (`API_TOKENS`, `API_TOKEN` as `default`); with no
 * token configured (loopback only) every request is let in, unnamed.
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("Authorization", {
  failure: Unauthorized,
  provides: CurrentCaller,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * The caller whose token this is. The presented token is copied into a buffer as wide as the
 * longest configured token and compared with each of them, padded alike, in constant time; every
 * configured token is compared, whatever matched before, so the time taken says neither which
 * caller nor how many callers there are before it, nor how much of a token was right.
 */
export const identify = (callers: ReadonlyArray<{ readonly name: string; readonly token: string }>) => {
  const width = Math.max(1, ...callers.map((c) => Buffer.byteLength(c.token)))
  const padded = callers.map((c) => {
    const bytes = Buffer.alloc(width)
    return { name: c.name, length: bytes.write(c.token), bytes }
  })
  // Reused: a check runs to its end without yielding, so no two checks share it at once.
  const presented = Buffer.alloc(width)
  return (token: string): string | null => {
    presented.fill(0)
    presented.write(token)
    const length = Buffer.byteLength(token)
    let found: string | null = null
    for (const caller of padded) {
      if (timingSafeEqual(presented, caller.bytes) && length === caller.length && found === null) found = caller.name
    }
    return found
  }
}

const anonymous = { name: null }

type Callers = ReadonlyArray<{ readonly name: string; readonly token: Redacted.Redacted<string> }>

const identifyCallers = (callers: Callers) => identify(callers.map((c) => ({ name: c.name, token: Redacted.value(c.token) })))

/** Whether a bearer token is one of the configured callers'; none when no token is configured (everyone is let in). */
export const tokenCheck = (callers: Callers): Option.Option<(token: string) => boolean> => {
  if (callers.length === 0) return Option.none()
  const find = identifyCallers(callers)
  return Option.some((token: string) => find(token) !== null)
}

const unauthorized = new Unauthorized({ message: "Missing or wrong bearer token" })

/** The token of an `Authorization: Bearer ...` header. */
export const bearerOf = (header: string | undefined): Option.Option<string> =>
  Option.fromNullable(header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1])

export const AuthorizationLive = Layer.effect(
  Authorization,
  Effect.gen(function*() {
    const { server } = yield* Config
    if (server.callers.length === 0) return { bearer: () => Effect.succeed(anonymous) }
    const find = identifyCallers(server.callers)
    return {
      bearer: (token: Redacted.Redacted) => {
        const name = find(Redacted.value(token))
        return name === null ? Effect.fail(unauthorized) : Effect.succeed({ name })
      }
    }
  })
)

/**
 * The same check on `/v1/*` before anything reads the body, so a caller without the token cannot
 * make the server read (and hold) up to `MAX_INPUT_BYTES`: the 401 to send, or undefined to go on.
 * Whatever of the body still arrives after the 401 is discarded by Node as it comes (closing at
 * once instead could reset the connection before the client has read the 401).
 */
export const refusedBeforeBody = (callers: Callers) =>
  Option.match(tokenCheck(callers), {
    onNone: () => (_path: string, _authorization: string | undefined): HttpServerResponse.HttpServerResponse | undefined => undefined,
    onSome: (check) => (path: string, authorization: string | undefined): HttpServerResponse.HttpServerResponse | undefined => {
      if (!path.startsWith("/v1/") && path !== "/v1") return undefined
      if (Option.exists(bearerOf(authorization), check)) return undefined
      return HttpServerResponse.unsafeJson(
        { _tag: unauthorized._tag, message: unauthorized.message },
        { status: 401, headers: { "www-authenticate": "Bearer" } }
      )
    }
  })
