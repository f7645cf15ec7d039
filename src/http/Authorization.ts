import { HttpApiMiddleware, HttpApiSecurity, HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Option, Redacted } from "effect"
import { timingSafeEqual, createHash } from "node:crypto"
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

// Hashing first gives equal lengths, so the comparison time says nothing about the token.
const digest = (s: string) => createHash("sha256").update(s).digest()

/**
 * The caller whose token this is. Every configured token is compared, whatever matched before, so
 * the time taken says neither which caller nor how many callers there are before it.
 */
export const identify = (callers: ReadonlyArray<{ readonly name: string; readonly digest: Buffer }>) => (token: string): string | null => {
  const presented = digest(token)
  let found: string | null = null
  for (const caller of callers) {
    if (timingSafeEqual(presented, caller.digest) && found === null) found = caller.name
  }
  return found
}

const anonymous = { name: null }

/** Whether a bearer token is one of the configured callers'; none when no token is configured (everyone is let in). */
export const tokenCheck = (callers: ReadonlyArray<{ readonly name: string; readonly token: Redacted.Redacted<string> }>): Option.Option<(token: string) => boolean> => {
  if (callers.length === 0) return Option.none()
  const find = identify(callers.map((c) => ({ name: c.name, digest: digest(Redacted.value(c.token)) })))
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
    const find = identify(server.callers.map((c) => ({ name: c.name, digest: digest(Redacted.value(c.token)) })))
    return {
      bearer: (token: Redacted.Redacted) => {
        const name = find(Redacted.value(token))
        return name === null
          ? Effect.fail(new Unauthorized({ message: "Missing or wrong bearer token" }))
          : Effect.succeed({ name })
      }
    }
  })
)

/**
 * The same check on `/v1/*` before anything reads the body, so a caller without the token cannot
 * make the server read (and hold) up to `MAX_INPUT_BYTES`. Whatever of the body still arrives
 * after the 401 is discarded by Node as it comes (closing at once instead could reset the
 * connection before the client has read the 401).
 */
export const authorizeBeforeBody = (callers: ReadonlyArray<{ readonly name: string; readonly token: Redacted.Redacted<string> }>) =>
  Option.match(tokenCheck(callers), {
    onNone: () => HttpMiddleware.make((app) => app),
    onSome: (check) =>
      HttpMiddleware.make((app) =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const path = request.url.split("?")[0] ?? ""
          if (!path.startsWith("/v1/") && path !== "/v1") return yield* app
          if (Option.exists(bearerOf(request.headers["authorization"]), check)) return yield* app
          return HttpServerResponse.unsafeJson(
            { _tag: unauthorized._tag, message: unauthorized.message },
            { status: 401, headers: { "www-authenticate": "Bearer" } }
          )
        }))
  })
