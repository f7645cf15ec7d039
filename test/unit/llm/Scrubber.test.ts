import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { Config, load } from "../../../src/Config.js"
import { derivedResponseCap } from "../../../src/llm/OpenRouter.js"
import { makeScrub, REDACTED, Scrubber, scrubDeep } from "../../../src/llm/Scrubber.js"

const withEnv = (env: Record<string, string>) =>
  load.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

const scrubberFor = (env: Record<string, string>) =>
  Effect.map(Scrubber, (s) => s.scrub).pipe(
    Effect.provide(Scrubber.layer.pipe(Layer.provide(Layer.effect(Config, withEnv(env)))))
  )

describe("Scrubber", () => {
  it.effect("removes every configured secret: the key, the API token, the SMTP, database and Redis passwords, the webhook URL", () =>
    Effect.gen(function*() {
      const scrub = yield* scrubberFor({
        OPENROUTER_API_KEY: "key-1234567890",
        API_TOKEN: "token-abcdef",
        SMTP_URL: "smtp://alerts:smtp%2Fpass@mail.example:587",
        DATABASE_URL: "postgres://app:db-pass@db:5432/x",
        REDIS_URL: "redis://:redis-pass@cache:6379",
        ALERT_WEBHOOK_URL: "https://hooks.example/T000/secret-path"
      })
      const text = "key-1234567890 token-abcdef smtp/pass smtp%2Fpass db-pass redis-pass https://hooks.example/T000/secret-path"
      expect(scrub(text)).toBe(Array(7).fill(REDACTED).join(" "))
    }))

  it("also hides what only looks like a credential: a bearer token or a key of another account", () => {
    const scrub = makeScrub([])
    expect(scrub(`Invalid credentials: Bearer sk-or-v1-abc, "Basic dXNlcjpwYXNz"`)).toBe(`Invalid credentials: Bearer ${REDACTED}, "Basic ${REDACTED}"`)
    expect(scrub("key sk-or-v1-0123456789abcdef0123 unknown")).toBe(`key ${REDACTED} unknown`)
    expect(scrub("No endpoints found for openai/gpt-4o-mini.")).toBe("No endpoints found for openai/gpt-4o-mini.")
    expect(scrub("We collect basic information about the bearer of the card.")).toBe("We collect basic information about the bearer of the card.")
  })

  it("finds a secret JSON-escaped or URL-encoded, and inside nested metadata", () => {
    const scrub = makeScrub([`p"a/ss word`])
    expect(scrub(JSON.stringify({ raw: `p"a/ss word` }))).toBe(`{"raw":"${REDACTED}"}`)
    expect(scrub("p%22a%2Fss%20word")).toBe(REDACTED)
    expect(scrubDeep(scrub, { headers: [{ authorization: `p"a/ss word` }], n: 1 })).toEqual({ headers: [{ authorization: REDACTED }], n: 1 })
  })

  it("leaves ordinary words alone when a configured value is too short to be a secret", () => {
    expect(makeScrub(["ab"])("a table")).toBe("a table")
  })
})

describe("Upstream settings", () => {
  it.effect("OPENROUTER_APP_TITLE outside Latin-1 is refused at start with the reason, not on every call", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withEnv({ OPENROUTER_APP_TITLE: "Политика" }))
      expect(error.problems).toEqual([
        `OPENROUTER_APP_TITLE: got "Политика": expected printable Latin-1 text for an HTTP header ("П" cannot be sent; write it in Latin letters)`
      ])
      const ok = yield* withEnv({ OPENROUTER_APP_TITLE: "Café Policies" })
      expect(ok.openrouter.appTitle._tag).toBe("Some")
    }))

  it.effect("UPSTREAM_MAX_RESPONSE_BYTES overrides the cap derived from max_tokens", () =>
    Effect.gen(function*() {
      expect((yield* withEnv({})).openrouter.maxResponseBytes._tag).toBe("None")
      expect((yield* withEnv({ UPSTREAM_MAX_RESPONSE_BYTES: "65536" })).openrouter.maxResponseBytes).toMatchObject({ value: 65_536 })
      const error = yield* Effect.flip(withEnv({ UPSTREAM_MAX_RESPONSE_BYTES: "10" }))
      expect(error.problems[0]).toMatch(/^UPSTREAM_MAX_RESPONSE_BYTES: got "10": expected a whole number from 1024/)
      // 500 tokens (the default) allow a little over 1 MB: generous for text, nothing like 400 MB.
      expect(derivedResponseCap(500)).toBe(1_080_576)
    }))
})
