import { Data, Effect, Redacted } from "effect"
import { createHmac } from "node:crypto"

/** Why a callback was not delivered; never names the URL's query, which may carry the receiver's secret. */
export class CallbackFailed extends Data.TaggedError("CallbackFailed")<{ readonly message: string }> {}

const timeout = "15 seconds"

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`: the receiver recomputes it with the shared `CALLBACK_SECRET`. */
export const signature = (secret: Redacted.Redacted<string>, timestamp: string, body: string) =>
  `sha256=${createHmac("sha256", Redacted.value(secret)).update(`${timestamp}.${body}`).digest("hex")}`

/**
 * Whether a callback URL may be called: http(s) only, and its host (`host` or `host:port`) named in
 * `CALLBACK_ALLOWED_HOSTS`, so the service cannot be used to make requests to arbitrary hosts.
 */
export const allowedCallback = (url: string, allowedHosts: ReadonlyArray<string>): boolean => {
  if (!URL.canParse(url)) return false
  const parsed = new URL(url)
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return false
  if (parsed.username !== "" || parsed.password !== "") return false
  return allowedHosts.includes(parsed.hostname.toLowerCase()) || allowedHosts.includes(parsed.host.toLowerCase())
}

/**
 * One signed POST. Redirects are not followed (a redirect could lead to a host not allowed); any
 * answer but 2xx is a failure, retried by the queue.
 */
export const deliver = (url: string, body: string, secret: Redacted.Redacted<string>, now: Date) =>
  Effect.gen(function*() {
    const timestamp = String(Math.floor(now.getTime() / 1000))
    const response = yield* Effect.tryPromise({
      try: (signal) =>
        fetch(url, {
          method: "POST",
          redirect: "manual",
          headers: {
            "content-type": "application/json",
            "x-signature-timestamp": timestamp,
            "x-signature": signature(secret, timestamp, body)
          },
          body,
          signal
        }),
      catch: (cause) => new CallbackFailed({ message: `request failed: ${cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause)}` })
    }).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => new CallbackFailed({ message: `no answer within ${timeout}` }) }))
    yield* Effect.ignore(Effect.tryPromise(() => response.arrayBuffer()))
    if (response.status < 200 || response.status > 299) return yield* new CallbackFailed({ message: `the receiver answered ${response.status}` })
  }).pipe(Effect.withSpan("Callback.deliver"))
