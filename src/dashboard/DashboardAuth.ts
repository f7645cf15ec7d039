import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect, Option, Redacted } from "effect"
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { Config } from "../Config.js"
import { Authorization } from "../http/Authorization.js"

const cookieName = "dashboard_session"

/** How long a login lasts; after it the form asks for the token again. */
const sessionMs = 8 * 60 * 60 * 1000

/**
 * The seam to the API's rules: with no token configured (only allowed on a loopback HOST) the
 * dashboard is open like the API; otherwise a login must present a token the API's bearer check
 * accepts (`API_TOKEN` or any of `API_TOKENS`).
 */
export const isOpen = Effect.map(Config, ({ server }) => server.callers.length === 0)

/** Sessions are signed with a key derived from the tokens, so replicas agree and a new token ends old sessions. */
const sessionKey = Effect.map(Config, ({ server }) => {
  if (server.callers.length === 0) return Option.none<Buffer>()
  const hash = createHash("sha256").update("policy-summarizer dashboard session\0")
  for (const caller of server.callers) hash.update(caller.name).update("\0").update(Redacted.value(caller.token)).update("\0")
  return Option.some(hash.digest())
})

const sign = (key: Buffer, payload: string) => createHmac("sha256", key).update(payload).digest("base64url")

/** Checked like `Authorization: Bearer <token>` on `/v1/*`. */
export const tokenAccepted = (token: string) =>
  Effect.gen(function*() {
    if (token === "") return false
    const auth = yield* Authorization
    return yield* auth.bearer(Redacted.make(token)).pipe(Effect.as(true), Effect.catchAll(() => Effect.succeed(false)))
  })

/**
 * The logged-out sessions' nonces until they expire; a signed cookie is otherwise valid until
 * its expiry, so logging out must be remembered (per process: another replica honours the expiry).
 */
export const makeSessions = Effect.sync(() => {
  const revoked = new Map<string, number>()

  const parse = (value: string) => {
    const [expires, nonce, mac] = value.split(".")
    return expires !== undefined && nonce !== undefined && mac !== undefined && /^\d{1,15}$/.test(expires)
      ? Option.some({ expiresMs: Number(expires), nonce, mac })
      : Option.none()
  }

  const valid = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      if (yield* isOpen) return true
      const key = yield* sessionKey
      const now = yield* Clock.currentTimeMillis
      const session = Option.flatMap(Option.fromNullable(request.cookies[cookieName]), parse)
      if (Option.isNone(session) || Option.isNone(key)) return false
      const { expiresMs, nonce, mac } = session.value
      const expected = Buffer.from(sign(key.value, `${expiresMs}.${nonce}`))
      const given = Buffer.from(mac)
      return given.length === expected.length && timingSafeEqual(given, expected) && expiresMs > now && !revoked.has(nonce)
    })

  const secure = (request: HttpServerRequest.HttpServerRequest) => request.headers["x-forwarded-proto"] === "https"

  /** A response that logs the browser in: the token itself never leaves the login request. */
  const start = (request: HttpServerRequest.HttpServerRequest, response: HttpServerResponse.HttpServerResponse) =>
    Effect.gen(function*() {
      const key = yield* sessionKey
      const now = yield* Clock.currentTimeMillis
      if (Option.isNone(key)) return response
      const expiresMs = now + sessionMs
      const payload = `${expiresMs}.${randomBytes(16).toString("base64url")}`
      return yield* HttpServerResponse.setCookie(response, cookieName, `${payload}.${sign(key.value, payload)}`, {
        httpOnly: true,
        sameSite: "strict",
        path: "/dashboard",
        expires: new Date(expiresMs),
        maxAge: `${Math.floor(sessionMs / 1000)} seconds`,
        secure: secure(request)
      })
    })

  const end = (request: HttpServerRequest.HttpServerRequest, response: HttpServerResponse.HttpServerResponse) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const [nonce, expiresMs] of revoked) if (expiresMs <= now) revoked.delete(nonce)
      Option.map(Option.flatMap(Option.fromNullable(request.cookies[cookieName]), parse), (s) => revoked.set(s.nonce, s.expiresMs))
      return yield* HttpServerResponse.setCookie(response, cookieName, "", {
        httpOnly: true,
        sameSite: "strict",
        path: "/dashboard",
        expires: new Date(0),
        maxAge: 0,
        secure: secure(request)
      })
    })

  return { valid, start, end }
})
