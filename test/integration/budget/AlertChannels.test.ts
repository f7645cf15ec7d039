import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { AlertLedger } from "../../../src/budget/AlertLedger.js"
import { AlertSender } from "../../../src/budget/AlertSender.js"
import { CostMonitor } from "../../../src/budget/CostMonitor.js"
import { configLayer, layerWith } from "../../support/TestDatabase.js"
import * as MemoryLedger from "./MemoryLedger.js"
import { MemoryLedger as Ledger } from "./MemoryLedger.js"
import * as SmtpSink from "./SmtpSink.js"
import { firstRun, resetTables } from "./support.js"

/** The production monitor with its configured channels, over an in-memory ledger, in real time. */
const monitorWith = (env: Record<string, string>) =>
  CostMonitor.layer.pipe(Layer.provide(AlertSender.layer), Layer.provideMerge(Layer.mergeAll(
    MemoryLedger.layer,
    configLayer({ COST_ALERT_INTERVAL_MS: "86400000", COST_ALERT_DAILY_USD: "1", COST_ALERT_MONTHLY_USD: "10", ...env })
  )))

const mailEnv = (port: number) => ({
  SMTP_URL: `smtp://127.0.0.1:${port}`,
  COST_ALERT_RECIPIENTS: "ops@example.com, finance@example.com",
  ALERT_FROM: "alerts@example.com"
})

/** A webhook receiver answering each POST with the next status of `statuses` (then 200). */
const webhook = (statuses: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const bodies = yield* Ref.make<ReadonlyArray<Record<string, unknown>>>([])
    let calls = 0
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const status = statuses[calls++] ?? 200
        if (status === 200) Effect.runSync(Ref.update(bodies, (all) => [...all, JSON.parse(Buffer.concat(chunks).toString("utf8"))]))
        res.writeHead(status).end()
      })
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
      }),
      () => Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
    )
    return { url: `http://127.0.0.1:${port}/hooks/secret-token`, bodies: Ref.get(bodies), calls: () => calls }
  })

// Real time throughout: sockets, SMTP and HTTP.
layer(AlertLedger.layer.pipe(Layer.provideMerge(layerWith("alert_channels"))), { excludeTestServices: true })("alert channels", (it) => {
  describe("e-mail over a real SMTP server", () => {
    it.scoped("one message per crossed level, to the recipients, with a subject that says budget, level, spend and period", () =>
      Effect.gen(function*() {
        yield* resetTables
        const port = yield* SmtpSink.freePort
        const smtp = yield* SmtpSink.start(port)
        yield* Effect.gen(function*() {
          const ledger = yield* Ledger
          const monitor = yield* CostMonitor
          yield* firstRun
          yield* ledger.add("openai/gpt-4o-mini", "0.62", new Date())
          yield* ledger.add("anthropic/claude-3.5-haiku", "0.21", new Date())
          yield* monitor.check
          yield* monitor.check
        }).pipe(Effect.provide(monitorWith(mailEnv(port))))

        const mails = yield* smtp.received
        const today = new Date().toISOString().slice(0, 10)
        expect(mails.map((m) => m.subject)).toEqual([
          `[policy-summarizer] Daily LLM budget 50% reached: $0.83 of $1.00 (${today})`,
          `[policy-summarizer] Daily LLM budget 80% reached: $0.83 of $1.00 (${today})`
        ])
        for (const mail of mails) {
          expect(mail.from).toBe("alerts@example.com")
          expect([...mail.to].sort()).toEqual(["finance@example.com", "ops@example.com"])
        }
        expect(mails[0]!.body).toContain("openai/gpt-4o-mini: $0.62 in 1 call")
        expect(mails[0]!.body).toContain("Calls:  2")
      }))

    it.scoped("with the SMTP server down at first, the alert arrives once after it comes up", () =>
      Effect.gen(function*() {
        yield* resetTables
        const sql = yield* SqlClient.SqlClient
        const port = yield* SmtpSink.freePort
        yield* Effect.gen(function*() {
          const ledger = yield* Ledger
          const monitor = yield* CostMonitor
          yield* firstRun
          yield* ledger.add("m", "0.5", new Date())
          expect(yield* monitor.check).toMatchObject({ sent: 0, failed: 1 })
          const [row] = yield* sql<{ last_error: string; sent_at: Date | null }>`SELECT last_error, sent_at FROM cost_alerts`
          expect(row!.sent_at).toBeNull()
          expect(row!.last_error).toMatch(/email: .*ECONNREFUSED/)

          const smtp = yield* SmtpSink.start(port)
          expect(yield* monitor.check).toMatchObject({ sent: 1 })
          yield* monitor.check
          expect((yield* smtp.received).map((m) => m.subject)).toEqual([
            expect.stringContaining("Daily LLM budget 50% reached: $0.50 of $1.00")
          ])
        }).pipe(Effect.provide(monitorWith(mailEnv(port))))
      }))
  })

  describe("webhook", () => {
    it.scoped("posts the facts as JSON with a text field; a failing webhook is retried without e-mailing twice", () =>
      Effect.gen(function*() {
        yield* resetTables
        const port = yield* SmtpSink.freePort
        const smtp = yield* SmtpSink.start(port)
        const hook = yield* webhook([500])
        yield* Effect.gen(function*() {
          const ledger = yield* Ledger
          const monitor = yield* CostMonitor
          yield* firstRun
          yield* ledger.add("openai/gpt-4o-mini", "6.5", new Date())
          expect(yield* monitor.check).toMatchObject({ sent: 0, failed: 1 })
          expect(yield* monitor.check).toMatchObject({ sent: 1, failed: 0 })
          yield* monitor.check
        }).pipe(Effect.provide(monitorWith({ ...mailEnv(port), ALERT_WEBHOOK_URL: hook.url, COST_ALERT_DAILY_USD: "100" })))

        expect(hook.calls()).toBe(2)
        expect(yield* smtp.received).toHaveLength(1)
        const month = new Date().toISOString().slice(0, 7)
        expect(yield* hook.bodies).toEqual([{
          text: `policy-summarizer: Monthly LLM budget 50% reached: $6.50 of $10.00 (${month})`,
          budget: "monthly",
          period: month,
          level: "0.5",
          limitUsd: "10",
          spentUsd: "6.5",
          calls: 1,
          topModels: [{ model: "openai/gpt-4o-mini", costUsd: "6.5", calls: 1 }]
        }])
      }))
  })
})
