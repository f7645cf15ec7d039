import { Context, Effect, Layer, Ref } from "effect"
import type { AlertChannel } from "../../../src/budget/AlertChannel.js"
import type { CostAlert } from "../../../src/budget/AlertMessage.js"
import { AlertSender } from "../../../src/budget/AlertSender.js"
import { WebhookSendError } from "../../../src/budget/WebhookChannel.js"

/** What an in-memory channel received, and a switch that makes it fail. */
export class Inbox extends Context.Tag("test/Inbox")<Inbox, {
  readonly received: Effect.Effect<ReadonlyArray<CostAlert>>
  readonly setFailing: (failing: boolean) => Effect.Effect<void>
}>() {}

export const makeInbox = Effect.gen(function*() {
  const received = yield* Ref.make<ReadonlyArray<CostAlert>>([])
  const failing = yield* Ref.make(false)
  const channel: AlertChannel = {
    name: "memory",
    send: (alert) =>
      Effect.flatMap(Ref.get(failing), (fail) =>
        fail
          ? Effect.fail(new WebhookSendError({ message: "memory channel down" }))
          : Ref.update(received, (all) => [...all, alert]))
  }
  return { channel, inbox: Inbox.of({ received: Ref.get(received), setFailing: (f) => Ref.set(failing, f) }) }
})

/** An `AlertSender` over one in-memory channel, plus its `Inbox`. */
export const layer: Layer.Layer<AlertSender | Inbox> = Layer.unwrapEffect(Effect.map(makeInbox, ({ channel, inbox }) =>
  Layer.merge(Layer.succeed(AlertSender, AlertSender.fromChannels([channel])), Layer.succeed(Inbox, inbox))
))
