import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, ConfigProvider, Effect, Layer, Logger, Ref } from "effect"
import type { AlertChannel } from "../../../src/budget/AlertChannel.js"
import type { CostAlert } from "../../../src/budget/AlertMessage.js"
import { AlertSender } from "../../../src/budget/AlertSender.js"
import { EmailSendError } from "../../../src/budget/EmailChannel.js"
import { Config } from "../../../src/Config.js"

const alert: CostAlert = {
  budget: "daily",
  period: "2026-11-29",
  level: BigDecimal.unsafeFromString("0.5"),
  limitUsd: BigDecimal.unsafeFromString("1"),
  spentUsd: BigDecimal.unsafeFromString("0.5"),
  calls: 3,
  topModels: []
}

const channel = (name: string, fails: boolean) =>
  Effect.map(Ref.make(0), (sends) => ({
    sends: Ref.get(sends),
    channel: {
      name,
      send: () =>
        Ref.update(sends, (n) => n + 1).pipe(
          Effect.zipRight(fails ? Effect.fail(new EmailSendError({ message: `${name} refused`, cause: null })) : Effect.void)
        )
    } satisfies AlertChannel
  }))

describe("AlertSender", () => {
  it.effect("sends to every channel, reports which accepted and which failed, and skips those that already have it", () =>
    Effect.gen(function*() {
      const email = yield* channel("email", true)
      const hook = yield* channel("webhook", false)
      const sender = AlertSender.fromChannels([email.channel, hook.channel])
      expect(sender.channels).toEqual(["email", "webhook"])

      const first = yield* sender.send(alert, [])
      expect(first.delivered).toEqual(["webhook"])
      expect(first.failures.map((f) => [f.channel, f.error.message])).toEqual([["email", "email refused"]])

      const retry = yield* sender.send(alert, first.delivered)
      expect(retry.delivered).toEqual([])
      expect(yield* hook.sends).toBe(1)
      expect(yield* email.sends).toBe(2)
    }))

  it.effect("with no channel there is nothing to fail: the monitor's log line is the alert", () =>
    Effect.gen(function*() {
      expect(yield* AlertSender.fromChannels([]).send(alert, [])).toEqual({ delivered: [], failures: [] })
    }))
})

/** The configured sender, with its start-up log lines captured. */
const configured = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const lines = yield* Ref.make<ReadonlyArray<string>>([])
    const capture = Logger.make(({ logLevel, message }) => {
      Effect.runSync(Ref.update(lines, (all) => [...all, `${logLevel.label} ${String(message)}`]))
    })
    const sender = yield* AlertSender.pipe(
      Effect.provide(AlertSender.layer.pipe(
        Layer.provide(Config.layer),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
      )),
      Effect.provide(Logger.replace(Logger.defaultLogger, capture))
    )
    return { channels: sender.channels, logs: yield* Ref.get(lines) }
  })

describe("AlertSender.layer", () => {
  it.scoped("with no channel configured says once at start that alerts go to the log only", () =>
    Effect.gen(function*() {
      const { channels, logs } = yield* configured({})
      expect(channels).toEqual([])
      expect(logs).toEqual([expect.stringMatching(/^WARN No alert channel configured .*log only/)])
    }))

  it.scoped("uses e-mail only with recipients, and the webhook whenever its URL is set", () =>
    Effect.gen(function*() {
      const noRecipients = yield* configured({ SMTP_URL: "smtp://127.0.0.1:2525" })
      expect(noRecipients.channels).toEqual([])
      expect(noRecipients.logs[0]).toMatch(/COST_ALERT_RECIPIENTS is empty/)
      const both = yield* configured({
        SMTP_URL: "smtp://user:hunter2@127.0.0.1:2525",
        COST_ALERT_RECIPIENTS: "ops@example.com",
        ALERT_WEBHOOK_URL: "https://hooks.example.com/T000/secret"
      })
      expect(both.channels).toEqual(["email", "webhook"])
      expect(both.logs.join("\n")).not.toMatch(/hunter2|secret/)
    }))
})
