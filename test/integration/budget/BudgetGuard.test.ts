import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, describe, expect, layer } from "@effect/vitest"
import { BigDecimal, Context, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { AlertLedger } from "../../../src/budget/AlertLedger.js"
import { BudgetGuard } from "../../../src/budget/BudgetGuard.js"
import { format } from "../../../src/domain/Money.js"
import { UsageRepo } from "../../../src/usage/UsageRepo.js"
import { configLayer, layerWith } from "../../support/TestDatabase.js"
import * as MemoryLedger from "./MemoryLedger.js"
import { MemoryLedger as Ledger } from "./MemoryLedger.js"
import { resetTables } from "./support.js"

const dec = BigDecimal.unsafeFromString
const dataDir = mkdtempSync(Path.join(tmpdir(), "budget-guard-"))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

/** The real ledger (`UsageRepo.layer`) on the test database, with these settings. */
const ledgerWith = (env: Record<string, string>) =>
  UsageRepo.layer.pipe(Layer.provideMerge(configLayer({ DATA_DIR: dataDir, ...env })))

/** A separate guard, as another replica would have: its own semaphore, the same database. */
const replica = Effect.map(Layer.build(BudgetGuard.layer), Context.get(BudgetGuard))

const ledgerRow = (costUsd: string) => ({
  id: crypto.randomUUID(),
  model: "openai/gpt-4o-mini",
  provider: "OpenAI",
  promptTokens: 1000,
  completionTokens: 500,
  totalTokens: 1500,
  costUsd: Option.some(dec(costUsd)),
  costSource: "provider" as const,
  requestId: null,
  createdAt: new Date(),
  status: "success" as const,
  errorCode: null,
  attempt: 1,
  latencyMs: 5,
  purpose: "summary",
  caller: null as string | null
})

const monthSpend = Effect.flatMap(UsageRepo, (repo) => repo.spend(new Date())).pipe(Effect.map((s) => s.monthUsd))

// Real time: the guard reads the ledger of the current UTC day and month.
layer(AlertLedger.layer.pipe(Layer.provideMerge(layerWith("budget_guard"))), { excludeTestServices: true })("BudgetGuard", (it) => {
  describe("hard cap", () => {
    it.scoped("50 concurrent calls through two replicas with a cap for about 10: the ledger stays under the cap, the rest are refused", () =>
      Effect.gen(function*() {
        yield* resetTables
        const repo = yield* UsageRepo
        const guards = yield* Effect.all([replica, replica])
        const worstCase = dec("0.10")
        // Real costs vary below the worst case, as they do when answers are shorter than max tokens.
        const costs = ["0.06", "0.07", "0.08", "0.09", "0.10"]
        const outcomes = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) => {
          const guard = guards[i % 2]!
          return guard.reserve(worstCase).pipe(
            Effect.flatMap((reservation) =>
              Effect.sleep(`${5 + (i % 7)} millis`).pipe(
                Effect.zipRight(repo.record(ledgerRow(costs[i % costs.length]!))),
                Effect.ensuring(guard.release(reservation))
              )
            ),
            Effect.as("called" as const),
            Effect.catchTag("BudgetExceeded", (e) => Effect.succeed(e._tag))
          )
        }, { concurrency: "unbounded" })

        const called = outcomes.filter((o) => o === "called").length
        const spent = yield* monthSpend
        expect(outcomes.filter((o) => o === "BudgetExceeded")).toHaveLength(50 - called)
        expect(called).toBeGreaterThanOrEqual(10)
        expect(called).toBeLessThan(17)
        expect(BigDecimal.lessThanOrEqualTo(spent, dec("1.00"))).toBe(true)
        expect(BigDecimal.greaterThan(spent, dec("0.80"))).toBe(true)

        const sql = yield* SqlClient.SqlClient
        expect(yield* sql`SELECT id FROM budget_reservations`).toEqual([])
      }).pipe(Effect.provide(ledgerWith({ COST_HARD_LIMIT_MONTHLY_USD: "1.00" }))))

    it.scoped("the daily cap refuses as the monthly one does, and reaching a cap exactly stops every call", () =>
      Effect.gen(function*() {
        yield* resetTables
        const guard = yield* BudgetGuard
        const repo = yield* UsageRepo
        yield* repo.record(ledgerRow("0.40"))
        const error = yield* Effect.flip(guard.reserve(dec("0.20")))
        expect(error).toMatchObject({ _tag: "BudgetExceeded", budget: "daily", limitUsd: "0.5", requestedUsd: "0.2" })
        expect(BigDecimal.equals(dec(error.committedUsd), dec("0.4"))).toBe(true)

        const fits = yield* guard.reserve(dec("0.10"))
        yield* guard.release(fits)
        expect(Option.isNone(yield* guard.exhausted)).toBe(true)

        yield* repo.record(ledgerRow("0.10"))
        expect(yield* Effect.flip(guard.reserve(dec("0")))).toMatchObject({ budget: "daily" })
        expect(yield* guard.exhausted).toEqual(Option.some(expect.objectContaining({ budget: "daily", limitUsd: "0.5" })))
      }).pipe(
        Effect.provide(BudgetGuard.layer),
        Effect.provide(ledgerWith({ COST_HARD_LIMIT_DAILY_USD: "0.50", COST_HARD_LIMIT_MONTHLY_USD: "100" }))
      ))

    it.scoped("a caller's own monthly cap refuses that caller only, counting its calls in flight, with no global cap set", () =>
      Effect.gen(function*() {
        yield* resetTables
        const guard = yield* BudgetGuard
        const repo = yield* UsageRepo
        yield* repo.record({ ...ledgerRow("0.70"), caller: "reports" })
        yield* repo.record({ ...ledgerRow("5.00"), caller: "classifier" })

        const inFlight = yield* guard.reserve(dec("0.20"), "reports")
        const refused = yield* Effect.flip(guard.reserve(dec("0.20"), "reports"))
        expect(refused).toMatchObject({ _tag: "BudgetExceeded", budget: "monthly", caller: "reports", limitUsd: "1", requestedUsd: "0.2" })
        expect(BigDecimal.equals(dec(refused.committedUsd), dec("0.9"))).toBe(true)
        // Another caller, one without a cap and a request with no caller are not held back by it.
        yield* guard.release(yield* guard.reserve(dec("0.20"), "classifier"))
        yield* guard.release(yield* guard.reserve(dec("50"), "ops"))
        yield* guard.release(yield* guard.reserve(dec("50")))

        yield* guard.release(inFlight)
        yield* guard.release(yield* guard.reserve(dec("0.20"), "reports"))
        yield* repo.record({ ...ledgerRow("0.30"), caller: "reports" })
        expect(yield* Effect.flip(guard.reserve(dec("0"), "reports"))).toMatchObject({ caller: "reports" })
        const status = yield* guard.status
        expect(status.find((s) => s.caller === "reports")).toMatchObject({ kind: "hard", budget: "monthly" })
        expect(format(status.find((s) => s.caller === "reports")!.spentUsd)).toBe("1")
      }).pipe(
        Effect.provide(BudgetGuard.layer),
        Effect.provide(ledgerWith({ CALLER_BUDGETS_MONTHLY_USD: "reports:1,classifier:10", API_TOKENS: "reports:tok-reports-1,classifier:tok-classifier-1" }))
      ))

    it.scoped("a reservation left by a crashed replica stops counting after 10 minutes", () =>
      Effect.gen(function*() {
        yield* resetTables
        const sql = yield* SqlClient.SqlClient
        const guard = yield* BudgetGuard
        yield* sql`INSERT INTO budget_reservations (id, amount_usd, created_at) VALUES (${crypto.randomUUID()}, 1, now() - interval '11 minutes')`
        yield* sql`INSERT INTO budget_reservations (id, amount_usd, created_at) VALUES (${crypto.randomUUID()}, 0.9, now() - interval '1 minute')`
        expect(yield* Effect.flip(guard.reserve(dec("0.2")))).toMatchObject({ committedUsd: "0.9" })
        const r = yield* guard.reserve(dec("0.1"))
        yield* guard.release(r)
        const rows = yield* sql<{ amount_usd: string }>`SELECT amount_usd FROM budget_reservations`
        expect(rows.map((row) => row.amount_usd)).toEqual(["0.9"])
      }).pipe(Effect.provide(BudgetGuard.layer), Effect.provide(ledgerWith({ COST_HARD_LIMIT_MONTHLY_USD: "1" }))))

    it.scoped("status shows each budget's limit, spend, reservations and the levels already alerted", () =>
      Effect.gen(function*() {
        yield* resetTables
        const sql = yield* SqlClient.SqlClient
        const guard = yield* BudgetGuard
        const repo = yield* UsageRepo
        yield* repo.record(ledgerRow("3.5"))
        const now = new Date().toISOString()
        const [today, month] = [now.slice(0, 10), now.slice(0, 7)]
        yield* sql`INSERT INTO cost_alerts (budget, period, level, limit_usd, spent_usd, sent_at) VALUES
          ('monthly', ${month}, 0.5, 5, 3.5, now()), ('monthly', ${month}, 0.8, 5, 4, NULL),
          ('monthly', '2000-01', 1.0, 5, 6, now()), ('daily', ${today}, 1.0, 2, 3.5, now())`
        const reservation = yield* guard.reserve(dec("0.25"))
        const status = yield* guard.status
        yield* guard.release(reservation)
        expect(status.map((s) => ({
          ...s,
          limitUsd: format(s.limitUsd),
          spentUsd: format(s.spentUsd),
          reservedUsd: format(s.reservedUsd)
        }))).toEqual([
          { budget: "daily", kind: "alert", limitUsd: "2", spentUsd: "3.5", reservedUsd: "0.25", levelsAlerted: ["1"] },
          { budget: "monthly", kind: "alert", limitUsd: "5", spentUsd: "3.5", reservedUsd: "0.25", levelsAlerted: ["0.5"] },
          { budget: "monthly", kind: "hard", limitUsd: "10", spentUsd: "3.5", reservedUsd: "0.25", levelsAlerted: [] }
        ])
      }).pipe(
        Effect.provide(BudgetGuard.layer),
        Effect.provide(ledgerWith({ COST_ALERT_DAILY_USD: "2", COST_ALERT_MONTHLY_USD: "5", COST_HARD_LIMIT_MONTHLY_USD: "10" }))
      ))
  })

  describe("what the cap tells an operator", () => {
    it.scoped("the cap's state is truthful: spent, reserved, and no room for one more worst-case call while calls are refused", () =>
      Effect.gen(function*() {
        yield* resetTables
        const guard = yield* BudgetGuard
        const repo = yield* UsageRepo
        yield* repo.record(ledgerRow("0.90"))
        const reservation = yield* guard.reserve(dec("0.04"))
        // 0.94 committed of 1: a call of up to 0.05 fits, one of up to 0.10 does not.
        const [cap] = yield* guard.capState(Option.some(dec("0.10")))
        expect({ ...cap, limitUsd: format(cap!.limitUsd), spentUsd: format(cap!.spentUsd), reservedUsd: format(cap!.reservedUsd), remainingUsd: format(cap!.remainingUsd) })
          .toMatchObject({ budget: "monthly", limitUsd: "1", spentUsd: "0.9", reservedUsd: "0.04", remainingUsd: "0.06", roomForOneMoreCall: Option.some(false), refusals: 0 })
        expect((yield* guard.capState(Option.some(dec("0.05"))))[0]!.roomForOneMoreCall).toEqual(Option.some(true))
        // The old check said "within budget" here, while every call of the worst case is refused.
        expect(Option.isNone(yield* guard.exhausted)).toBe(true)
        yield* Effect.flip(guard.reserve(dec("0.10")))
        yield* Effect.flip(guard.reserve(dec("0.10")))
        yield* guard.release(reservation)
        const [after] = yield* guard.capState(Option.none())
        expect(after).toMatchObject({ refusals: 2, lastRefusedUsd: Option.some("0.1"), roomForOneMoreCall: Option.none() })
      }).pipe(Effect.provide(BudgetGuard.layer), Effect.provide(ledgerWith({ COST_HARD_LIMIT_MONTHLY_USD: "1" }))))

    it.scoped("the first refusal of a period is logged at WARN with the figures, later ones at DEBUG", () =>
      Effect.gen(function*() {
        yield* resetTables
        const guard = yield* BudgetGuard
        const repo = yield* UsageRepo
        yield* repo.record(ledgerRow("0.95"))
        const logs: Array<{ level: string; message: string }> = []
        const capture = Logger.make(({ logLevel, message }) => {
          logs.push({ level: logLevel.label, message: String(Array.isArray(message) ? message[0] : message) })
        })
        const refuse = Effect.flip(guard.reserve(dec("0.10"))).pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
          Logger.withMinimumLogLevel(LogLevel.All)
        )
        yield* refuse
        yield* refuse
        yield* refuse
        const refusals = logs.filter((l) => /refused by the hard/.test(l.message))
        expect(refusals.map((l) => l.level)).toEqual(["WARN", "DEBUG", "DEBUG"])
        expect(refusals[0]!.message).toContain("0.95 of 1 USD")
        expect(refusals[0]!.message).toContain("up to 0.1 USD")
      }).pipe(Effect.provide(BudgetGuard.layer), Effect.provide(ledgerWith({ COST_HARD_LIMIT_MONTHLY_USD: "1" }))))
  })

  describe("without a hard limit", () => {
    it.scoped("reserve and release neither read the ledger nor write a reservation", () =>
      Effect.gen(function*() {
        yield* resetTables
        const sql = yield* SqlClient.SqlClient
        const guard = yield* BudgetGuard
        const ledger = yield* Ledger
        const reservations = yield* Effect.forEach([1, 2, 3], () => guard.reserve(dec("1000")))
        yield* Effect.forEach(reservations, guard.release)
        expect(Option.isNone(yield* guard.exhausted)).toBe(true)
        expect(yield* ledger.spendCalls).toBe(0)
        expect(yield* sql`SELECT id FROM budget_reservations`).toEqual([])
      }).pipe(Effect.provide(BudgetGuard.layer.pipe(Layer.provideMerge(Layer.merge(MemoryLedger.layer, configLayer({})))))))
  })
})
