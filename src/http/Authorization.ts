import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Effect, Layer, Redacted } from "effect"
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
