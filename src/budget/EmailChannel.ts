import { Data, Effect, Redacted } from "effect"
import type { AlertChannel } from "./AlertChannel.js"
import { subject, text } from "./AlertMessage.js"

export class EmailSendError extends Data.TaggedError("EmailSendError")<{
  readonly message: string
  readonly cause: unknown
}> {}

export interface EmailOptions {
  readonly smtpUrl: Redacted.Redacted<string>
  readonly from: string
  readonly recipients: ReadonlyArray<string>
}

/** Bounded so that a stuck SMTP server fails the send well within the monitor's claim lease. */
const timeouts = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 }
const sendTimeout = "60 seconds"

/** E-mail through `nodemailer` over `SMTP_URL`; the transport closes with the scope. */
export const make = (options: EmailOptions) =>
  Effect.map(
    Effect.acquireRelease(
      // Loaded only when SMTP_URL is set.
      Effect.map(Effect.promise(() => import("nodemailer")), ({ default: nodemailer }) => nodemailer.createTransport({ url: Redacted.value(options.smtpUrl), ...timeouts })),
      (transport) => Effect.sync(() => transport.close())
    ),
    (transport): AlertChannel => ({
      name: "email",
      send: (alert) =>
        Effect.tryPromise({
          try: () =>
            transport.sendMail({
              from: options.from,
              to: options.recipients.join(", "),
              subject: subject(alert),
              text: text(alert)
            }),
          catch: (cause) =>
            new EmailSendError({ message: cause instanceof Error ? cause.message : String(cause), cause })
        }).pipe(
          Effect.timeoutFail({
            duration: sendTimeout,
            onTimeout: () => new EmailSendError({ message: `no answer from the SMTP server within ${sendTimeout}`, cause: null })
          }),
          Effect.asVoid
        )
    })
  )
