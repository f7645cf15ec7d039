import { Data, Effect, Redacted } from "effect"
import type { AlertChannel } from "./AlertChannel.js"
import { payload } from "./AlertMessage.js"

/** The message never names the URL: chat webhooks carry their secret in it. */
export class WebhookSendError extends Data.TaggedError("WebhookSendError")<{
  readonly message: string
  readonly status?: number
  readonly cause?: unknown
}> {}

const timeout = "15 seconds"

/** POSTs each alert as JSON (with a `text` field, so a chat webhook shows it) to `ALERT_WEBHOOK_URL`. */
export const make = (url: Redacted.Redacted<string>): AlertChannel => ({
  name: "webhook",
  send: (alert) =>
    Effect.tryPromise({
      try: (signal) =>
        fetch(Redacted.value(url), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(payload(alert)),
          signal
        }),
      catch: (cause) => new WebhookSendError({ message: `webhook request failed: ${describe(cause)}`, cause })
    }).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => new WebhookSendError({ message: `webhook timed out after ${timeout}` }) }),
      Effect.flatMap((response) =>
        response.ok
          ? Effect.ignore(Effect.tryPromise(() => response.arrayBuffer()))
          : Effect.fail(new WebhookSendError({ message: `webhook answered ${response.status}`, status: response.status }))
      )
    )
})

const describe = (cause: unknown): string =>
  cause instanceof Error
    ? cause.cause instanceof Error ? `${cause.message} (${cause.cause.message})` : cause.message
    : String(cause)
