import { Context, Effect, Layer, Option, Redacted } from "effect"
import type { AppConfig } from "../Config.js"
import { Config } from "../Config.js"

export const REDACTED = "[REDACTED]"

/** Shorter values are not worth hiding and would mangle ordinary words if replaced. */
const minSecretLength = 4

// Whatever secret an upstream echoes, even one this process does not know (another key, a proxy's token).
const patterns: ReadonlyArray<readonly [RegExp, string]> = [
  // Header spelling and a token-like value, so prose such as "basic information" stays as it is.
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g, `$1 ${REDACTED}`],
  [/\bsk-[A-Za-z0-9_-]{16,}/g, REDACTED]
]

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** The password of a URL such as `smtp://user:password@host`, when it has one. */
const passwordOf = (url: string): ReadonlyArray<string> => {
  if (!URL.canParse(url)) return []
  const password = new URL(url).password
  return password === "" ? [] : [decodeURIComponent(password)]
}

/** Every secret value the configuration holds: upstream text must never carry one onward. */
export const secretsOf = (config: AppConfig): ReadonlyArray<string> => {
  const values = (o: Option.Option<Redacted.Redacted<string>>) => Option.match(o, { onNone: () => [], onSome: (r) => [Redacted.value(r)] })
  return [
    ...values(config.openrouter.apiKey),
    ...values(config.server.apiToken),
    ...config.server.callers.map((c) => Redacted.value(c.token)),
    ...values(config.alerts.smtpUrl).flatMap(passwordOf),
    ...values(config.alerts.webhookUrl),
    ...values(config.database.url).flatMap(passwordOf),
    ...values(config.rateLimit.redisUrl).flatMap(passwordOf),
    ...values(config.jobs.callbackSecret)
  ]
}

/** A scrub function for these secrets: each as written, URL-encoded and JSON-escaped, longest first. */
export const makeScrub = (secrets: ReadonlyArray<string>): (text: string) => string => {
  const forms = new Set<string>()
  for (const secret of secrets) {
    if (secret.length < minSecretLength) continue
    forms.add(secret)
    forms.add(encodeURIComponent(secret))
    forms.add(JSON.stringify(secret).slice(1, -1))
  }
  const known = [...forms].sort((a, b) => b.length - a.length)
  const exact = known.length === 0 ? undefined : new RegExp(known.map(escapeRegExp).join("|"), "g")
  return (text) => {
    let out = exact === undefined ? text : text.replace(exact, REDACTED)
    for (const [pattern, replacement] of patterns) out = out.replace(pattern, replacement)
    return out
  }
}

/** Every string inside a JSON-like value scrubbed (upstream error metadata is arbitrary JSON). */
export const scrubDeep = (scrub: (text: string) => string, value: unknown, depth = 0): unknown => {
  if (typeof value === "string") return scrub(value)
  if (depth > 8 || typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) return value.map((v) => scrubDeep(scrub, v, depth + 1))
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [scrub(k), scrubDeep(scrub, v, depth + 1)]))
}

/**
 * Removes the configured secrets (API key, API token, SMTP and database passwords, the webhook
 * URL) and anything shaped like a bearer token or key from text that came from upstream, before
 * it is logged, stored or returned: an upstream may echo the request's `Authorization` header.
 */
export class Scrubber extends Context.Tag("Scrubber")<Scrubber, {
  readonly scrub: (text: string) => string
}>() {
  static readonly layer = Layer.effect(Scrubber, Effect.map(Config, (config) => Scrubber.of({ scrub: makeScrub(secretsOf(config)) })))
}
