import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
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

export const AuthorizationLive = Layer.effect(
  Authorization,
  Effect.gen(function*() {
    const { server } = yield* Config
    return Option.match(server.apiToken, {
      onNone: () => ({ bearer: () => Effect.void }),
      onSome: (expected) => {
        const expectedDigest = digest(Redacted.value(expected))
        return {
          bearer: (token: Redacted.Redacted) =>
            timingSafeEqual(digest(Redacted.value(token)), expectedDigest)
              ? Effect.void
              : Effect.fail(new Unauthorized({ message: "Missing or wrong bearer token" }))
        }
      }
    })
  })
)
