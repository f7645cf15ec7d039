import type { Effect } from "effect"
import type { CostAlert } from "./AlertMessage.js"
import type { EmailSendError } from "./EmailChannel.js"
import type { WebhookSendError } from "./WebhookChannel.js"

export type AlertChannelError = EmailSendError | WebhookSendError

/** Somewhere an alert goes; `name` is what `cost_alerts.delivered` remembers per alert. */
export interface AlertChannel {
  readonly name: string
  readonly send: (alert: CostAlert) => Effect.Effect<void, AlertChannelError>
}
