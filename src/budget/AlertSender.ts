import { Context, Effect, Layer, Option } from "effect"
import { Config } from "../Config.js"
import type { AlertChannel, AlertChannelError } from "./AlertChannel.js"
import type { CostAlert } from "./AlertMessage.js"
import * as EmailChannel from "./EmailChannel.js"
import * as WebhookChannel from "./WebhookChannel.js"

export interface Delivery {
  /** Channels that accepted the alert in this attempt. */
  readonly delivered: ReadonlyArray<string>
  readonly failures: ReadonlyArray<{ readonly channel: string; readonly error: AlertChannelError }>
}

/**
 * Fans an alert out to the configured channels (e-mail, webhook). The structured log line every
 * alert gets is written by the monitor; with no channel configured it is the only trace.
 */
export class AlertSender extends Context.Tag("AlertSender")<AlertSender, {
  readonly channels: ReadonlyArray<string>
  /** Sends to every channel not in `skip` (those that already accepted this alert on an earlier try). */
  readonly send: (alert: CostAlert, skip: ReadonlyArray<string>) => Effect.Effect<Delivery>
}>() {
  static readonly fromChannels = (channels: ReadonlyArray<AlertChannel>): AlertSender["Type"] => ({
    channels: channels.map((c) => c.name),
    send: (alert, skip) =>
      Effect.forEach(
        channels.filter((c) => !skip.includes(c.name)),
        (channel) => Effect.either(channel.send(alert)).pipe(Effect.map((result) => ({ channel: channel.name, result }))),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((results) => ({
        delivered: results.filter((r) => r.result._tag === "Right").map((r) => r.channel),
        failures: results.flatMap((r) => r.result._tag === "Left" ? [{ channel: r.channel, error: r.result.left }] : [])
      })))
  })

  static readonly layer: Layer.Layer<AlertSender, never, Config> = Layer.scoped(
    AlertSender,
    Effect.gen(function*() {
      const { alerts } = yield* Config
      const channels: Array<AlertChannel> = []
      if (Option.isSome(alerts.smtpUrl)) {
        if (alerts.recipients.length === 0) {
          yield* Effect.logWarning("SMTP_URL is set but COST_ALERT_RECIPIENTS is empty: cost alerts are not e-mailed")
        } else {
          channels.push(yield* EmailChannel.make({
            smtpUrl: alerts.smtpUrl.value,
            from: Option.getOrElse(alerts.from, () => "policy-summarizer <policy-summarizer@localhost>"),
            recipients: alerts.recipients
          }))
        }
      }
      if (Option.isSome(alerts.webhookUrl)) channels.push(WebhookChannel.make(alerts.webhookUrl.value))
      yield* channels.length === 0
        ? Effect.logWarning("No alert channel configured (SMTP_URL, ALERT_WEBHOOK_URL): cost alerts go to the log only")
        : Effect.logInfo("Cost alerts are sent").pipe(
          Effect.annotateLogs({ channels: channels.map((c) => c.name).join(","), recipients: alerts.recipients.join(",") })
        )
      return AlertSender.fromChannels(channels)
    })
  )
}
