import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, TestClock } from "effect"
import { AlertLedger } from "../../../src/budget/AlertLedger.js"
import { CostMonitor } from "../../../src/budget/CostMonitor.js"
import { format } from "../../../src/domain/Money.js"
import { configLayer, layerWith } from "../../support/TestDatabase.js"
import * as MemoryChannel from "./MemoryChannel.js"
import { Inbox } from "./MemoryChannel.js"
import * as MemoryLedger from "./MemoryLedger.js"
import { MemoryLedger as Ledger } from "./MemoryLedger.js"
import { eventually, firstRun, line, resetTables } from "./support.js"

const day = 86_400_000

/** The real monitor and its SQL claims, over an in-memory ledger and channel, on the TestClock. */
const monitorWith = (env: Record<string, string>) =>
  CostMonitor.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(MemoryLedger.layer, MemoryChannel.layer, configLayer({ COST_ALERT_INTERVAL_MS: String(day), ...env })))
  )

const at = (iso: string) => new Date(Date.parse(iso))

const sent = Effect.map(Effect.flatMap(Inbox, (inbox) => inbox.received), (alerts) => alerts.map(line))

it.layer(AlertLedger.layer.pipe(Layer.provideMerge(layerWith("cost_monitor"))))("CostMonitor", (it) => {
  describe("on the TestClock", () => {
    it.scoped("each level sends one alert as spend crosses it, and a run with nothing new sends nothing", () =>
      Effect.gen(function*() {
        yield* resetTables
        yield* TestClock.setTime(Date.parse("2026-11-10T12:00:00Z"))
        yield* Effect.gen(function*() {
          const ledger = yield* Ledger
          const monitor = yield* CostMonitor
          yield* firstRun
          const now = at("2026-11-10T12:00:00Z")

          yield* ledger.add("openai/gpt-4o-mini", "0.40", now)
          yield* monitor.check
          expect(yield* sent).toEqual([])

          yield* ledger.add("openai/gpt-4o-mini", "0.15", now)
          yield* monitor.check
          expect(yield* sent).toEqual(["daily 0.5 2026-11-10"])
          yield* monitor.check
          expect(yield* sent).toEqual(["daily 0.5 2026-11-10"])

          yield* ledger.add("anthropic/claude-3.5-haiku", "0.30", now)
          yield* monitor.check
          yield* ledger.add("openai/gpt-4o-mini", "0.20", now)
          yield* monitor.check
          yield* monitor.check
          expect(yield* sent).toEqual(["daily 0.5 2026-11-10", "daily 0.8 2026-11-10", "daily 1 2026-11-10"])

          const last = (yield* Effect.flatMap(Inbox, (i) => i.received)).at(-1)!
          expect(last.calls).toBe(4)
          expect(last.topModels.map((m) => m.model)).toEqual(["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"])
        }).pipe(Effect.provide(monitorWith({ COST_ALERT_DAILY_USD: "1", COST_ALERT_MONTHLY_USD: "100" })))
      }))

    it.scoped("each caller with its own budget alerts at the same levels, once per month, apart from the others", () =>
      Effect.gen(function*() {
        yield* resetTables
        yield* TestClock.setTime(Date.parse("2026-11-10T12:00:00Z"))
        yield* Effect.gen(function*() {
          const ledger = yield* Ledger
          const monitor = yield* CostMonitor
          yield* firstRun
          const now = at("2026-11-10T12:00:00Z")
          const callerLines = Effect.map(Effect.flatMap(Inbox, (inbox) => inbox.received), (alerts) =>
            alerts.map((a) => `${a.caller ?? "-"} ${line(a)}`))

          yield* ledger.add("openai/gpt-4o-mini", "0.60", now, "reports")
          yield* ledger.add("openai/gpt-4o-mini", "0.60", now, "classifier")
          yield* ledger.add("openai/gpt-4o-mini", "3.00", now)
          yield* monitor.check
          expect(yield* callerLines).toEqual(["reports monthly 0.5 2026-11"])
          yield* monitor.check
          expect(yield* callerLines).toHaveLength(1)

          yield* ledger.add("openai/gpt-4o-mini", "0.45", now, "reports")
          yield* monitor.check
          expect(yield* callerLines).toEqual(["reports monthly 0.5 2026-11", "reports monthly 0.8 2026-11", "reports monthly 1 2026-11"])
          const last = (yield* Effect.flatMap(Inbox, (i) => i.received)).at(-1)!
          expect(last).toMatchObject({ caller: "reports", calls: 2 })
          expect(format(last.spentUsd)).toBe("1.05")
        }).pipe(Effect.provide(monitorWith({
          API_TOKENS: "reports:tok-reports-1,classifier:tok-classifier-1",
          CALLER_BUDGETS_MONTHLY_USD: "reports:1,classifier:10"
        })))
      }))

    it.scoped("midnight UTC opens a new daily period and a month end a new monthly one: levels alert again", () =>
      Effect.gen(function*() {
        yield* resetTables
        yield* TestClock.setTime(Date.parse("2026-11-30T23:30:00Z"))
        yield* Effect.gen(function*() {
          const ledger = yield* Ledger
          const monitor = yield* CostMonitor
          yield* firstRun

          yield* ledger.add("m", "0.6", at("2026-11-30T23:30:00Z"))
          yield* monitor.check
          expect(yield* sent).toEqual(["daily 0.5 2026-11-30"])

          yield* TestClock.adjust("1 hour")
          yield* monitor.check
          expect(yield* sent).toHaveLength(1)

          yield* ledger.add("m", "0.6", at("2026-12-01T00:30:00Z"))
          yield* monitor.check
          expect(yield* sent).toEqual(["daily 0.5 2026-11-30", "daily 0.5 2026-12-01"])

          // 0.6 + 0.6 in December: daily 80% is crossed, and so is half of the 2.00 month.
          yield* ledger.add("m", "0.4", at("2026-12-01T00:30:00Z"))
          yield* monitor.check
          expect(yield* sent).toEqual([
            "daily 0.5 2026-11-30",
            "daily 0.5 2026-12-01",
            "daily 0.8 2026-12-01",
            "daily 1 2026-12-01",
            "monthly 0.5 2026-12"
          ])
        }).pipe(Effect.provide(monitorWith({ COST_ALERT_DAILY_USD: "1", COST_ALERT_MONTHLY_USD: "2" })))
      }))

    it.scoped("a send that fails is retried on later runs until it goes through, then never again", () =>
      Effect.gen(function*() {
        yield* resetTables
        yield* TestClock.setTime(Date.parse("2026-11-10T12:00:00Z"))
        const sql = yield* SqlClient.SqlClient
        yield* Effect.gen(function*() {
          const ledger = yield* Ledger
          const inbox = yield* Inbox
          const monitor = yield* CostMonitor
          yield* firstRun
          yield* inbox.setFailing(true)
          yield* ledger.add("m", "0.6", at("2026-11-10T12:00:00Z"))
          expect(yield* monitor.check).toEqual({ sent: 0, failed: 1 })
          expect(yield* monitor.check).toEqual({ sent: 0, failed: 1 })
          const [pending] = yield* sql<{ attempts: number; last_error: string; sent_at: Date | null }>`
            SELECT attempts, last_error, sent_at FROM cost_alerts`
          expect(pending).toMatchObject({ attempts: 2, sent_at: null })
          expect(pending!.last_error).toContain("memory channel down")

          yield* inbox.setFailing(false)
          expect(yield* monitor.check).toEqual({ sent: 1, failed: 0 })
          expect(yield* monitor.check).toEqual({ sent: 0, failed: 0 })
          expect(yield* sent).toEqual(["daily 0.5 2026-11-10"])
        }).pipe(Effect.provide(monitorWith({ COST_ALERT_DAILY_USD: "1" })))
      }))

    it.scoped("the schedule survives failing runs (ledger down) and stops with its scope", () =>
      Effect.gen(function*() {
        yield* resetTables
        yield* TestClock.setTime(Date.parse("2026-11-10T12:00:00Z"))
        const ledger = yield* Ledger
        const runs = yield* Effect.scoped(Effect.gen(function*() {
          yield* Layer.build(CostMonitor.layer)
          yield* firstRun
          yield* ledger.setDown(true)
          yield* ledger.add("m", "0.6", at("2026-11-10T12:00:00Z"))
          yield* TestClock.adjust("1 minute")
          yield* eventually(ledger.spendCalls, (n) => n >= 2)
          yield* TestClock.adjust("1 minute")
          yield* eventually(ledger.spendCalls, (n) => n >= 3)
          expect(yield* sent).toEqual([])
          yield* ledger.setDown(false)
          yield* TestClock.adjust("1 minute")
          yield* eventually(sent, (s) => s.length === 1)
          return yield* ledger.spendCalls
        }))
        yield* TestClock.adjust("10 minutes")
        expect(yield* ledger.spendCalls).toBe(runs)
      }).pipe(Effect.provide(Layer.mergeAll(
        MemoryLedger.layer,
        MemoryChannel.layer,
        configLayer({ COST_ALERT_INTERVAL_MS: "60000", COST_ALERT_DAILY_USD: "1" })
      ))))
  })

  describe("replicas and restarts", () => {
    const shared = Layer.mergeAll(
      MemoryLedger.layer,
      MemoryChannel.layer,
      configLayer({ COST_ALERT_INTERVAL_MS: String(day), COST_ALERT_DAILY_USD: "1", COST_ALERT_MONTHLY_USD: "1" })
    )
    const instance = Effect.map(Layer.build(CostMonitor.layer), Context.get(CostMonitor))

    it.scoped("two monitors on one database racing every run send one message per level", () =>
      Effect.gen(function*() {
        yield* resetTables
        yield* TestClock.setTime(Date.parse("2026-11-10T12:00:00Z"))
        const ledger = yield* Ledger
        const [a, b] = yield* Effect.all([instance, instance])
        yield* ledger.add("m", "0.85", at("2026-11-10T12:00:00Z"))
        yield* Effect.all([a.check, b.check, a.check, b.check], { concurrency: "unbounded" })
        yield* ledger.add("m", "0.2", at("2026-11-10T12:00:00Z"))
        yield* Effect.all([a.check, b.check, a.check, b.check], { concurrency: "unbounded" })
        expect([...yield* sent].sort()).toEqual([
          "daily 0.5 2026-11-10",
          "daily 0.8 2026-11-10",
          "daily 1 2026-11-10",
          "monthly 0.5 2026-11",
          "monthly 0.8 2026-11",
          "monthly 1 2026-11"
        ])
      }).pipe(Effect.provide(shared)))

    it.scoped("a restart sends what was pending once and nothing already sent", () =>
      Effect.gen(function*() {
        yield* resetTables
        yield* TestClock.setTime(Date.parse("2026-11-10T12:00:00Z"))
        const ledger = yield* Ledger
        const inbox = yield* Inbox
        yield* ledger.add("m", "0.6", at("2026-11-10T12:00:00Z"))
        yield* Effect.scoped(Effect.flatMap(instance, (m) => m.check))
        expect(yield* sent).toEqual(["daily 0.5 2026-11-10", "monthly 0.5 2026-11"])

        yield* ledger.add("m", "0.3", at("2026-11-10T12:00:00Z"))
        yield* inbox.setFailing(true)
        yield* Effect.scoped(Effect.flatMap(instance, (m) => m.check))
        yield* inbox.setFailing(false)

        yield* Effect.scoped(Effect.flatMap(instance, (m) => Effect.zipRight(m.check, m.check)))
        expect(yield* sent).toEqual([
          "daily 0.5 2026-11-10",
          "monthly 0.5 2026-11",
          "daily 0.8 2026-11-10",
          "monthly 0.8 2026-11"
        ])
      }).pipe(Effect.provide(shared)))
  })
})
