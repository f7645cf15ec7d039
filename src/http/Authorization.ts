import { HttpApiMiddleware, HttpApiSecurity, HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Option, Redacted } from "effect"
import { timingSafeEqual, createHash } from "node:crypto"
import { Config } from "../Config.js"
import { Unauthorized } from "../domain/ApiErrors.js"

/** Bearer token on `/v1/*`; with no `API_TOKEN` (loopback only) every caller is let in. */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("Authorization", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

// Hashing first gives equal lengths, so the comparison time says nothing about the token.
const digest = (s: string) => createHash("sha256").update(s).digest()

/** Whether a bearer token is the configured one; none when no `API_TOKEN` is set (everyone is let in). */
export const tokenCheck = (apiToken: Option.Option<Redacted.Redacted<string>>): Option.Option<(token: string) => boolean> =>
  Option.map(apiToken, (expected) => {
    const expectedDigest = digest(Redacted.value(expected))
    return (token: string) => timingSafeEqual(digest(token), expectedDigest)
  })

/** The token of an `Authorization: Bearer ...` header. */
export const bearerOf = (header: string | undefined): Option.Option<string> =>
  Option.fromNullable(header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1])

const unauthorized = new Unauthorized({ message: "Missing or wrong bearer token" })

export const AuthorizationLive = Layer.effect(
  Authorization,
  Effect.gen(function*() {
    const { server } = yield* Config
    return Option.match(tokenCheck(server.apiToken), {
      onNone: () => ({ bearer: () => Effect.void }),
      onSome: (check) => ({
        bearer: (token: Redacted.Redacted) => check(Redacted.value(token)) ? Effect.void : Effect.fail(unauthorized)
      })
    })
  })
)

/**
 * The same check on `/v1/*` before anything reads the body, so a caller without the token cannot
 * make the server read (and hold) up to `MAX_INPUT_BYTES`. Whatever of the body still arrives
 * after the 401 is discarded by Node as it comes (closing at once instead could reset the
 * connection before the client has read the 401).
 */
export const authorizeBeforeBody = (apiToken: Option.Option<Redacted.Redacted<string>>) =>
  Option.match(tokenCheck(apiToken), {
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
