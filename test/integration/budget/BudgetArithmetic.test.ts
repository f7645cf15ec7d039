import * as SqlClient from "@effect/sql/SqlClient"
import { expect, layer } from "@effect/vitest"
import { Array as Arr, BigDecimal, Clock, Context, Effect, Either, Layer, Logger, LogLevel, Option } from "effect"
import fc from "fast-check"
import { AlertLedger } from "../../../src/budget/AlertLedger.js"
import { BudgetGuard } from "../../../src/budget/BudgetGuard.js"
import { CostMonitor } from "../../../src/budget/CostMonitor.js"
import { format } from "../../../src/domain/Money.js"
import { configLayer, layerWith } from "../../support/TestDatabase.js"
import * as MemoryChannel from "./MemoryChannel.js"
import * as MemoryLedger from "./MemoryLedger.js"
import { MemoryLedger as Ledger } from "./MemoryLedger.js"
import { firstRun } from "./support.js"

/** Amounts as the ledger holds them: cents up to 20 dollars, often with digits down to 10^-12, so they compare. */
const money = fc.tuple(fc.integer({ min: 0, max: 2_000 }), fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 10n ** 10n - 1n })))
  .map(([cents, fraction]) => format(BigDecimal.make(BigInt(cents) * 10n ** 10n + fraction, 12)))
const positive = money.filter((m) => m !== "0")

/** Spend today, spend earlier this month (today's included in the month), the limits and what is already reserved. */
const situation = fc.record({
  today: money,
  earlierThisMonth: money,
  daily: fc.option(positive, { nil: undefined }),
  monthly: fc.option(positive, { nil: undefined }),
  reserved: fc.array(positive, { maxLength: 3 })
})

/** The first day of this UTC month, unless that is today (then the month's spend is today's). */
const earlierDay = (now: Date) => {
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1, 0, 0, 1))
  return first.toISOString().slice(0, 10) === now.toISOString().slice(0, 10) ? Option.none() : Option.some(first)
}

/** Runs `effect` on the shared database connection from inside a fast-check property. */
const runner = Effect.map(Effect.runtime<SqlClient.SqlClient | AlertLedger>(), (runtime) =>
  <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | AlertLedger>) => Effect.runPromise(Effect.provide(effect, runtime)))

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

// Real time: the guard reads the spend of the current UTC day and month.
layer(AlertLedger.layer.pipe(Layer.provideMerge(layerWith("budget_arithmetic"))), { excludeTestServices: true })("budget arithmetic against PostgreSQL NUMERIC", (it) => {
  it.effect("a call is admitted exactly when spent + reserved + its worst case stays within every hard limit", () =>
    Effect.gen(function*() {
      const run = yield* runner
      const sql = yield* SqlClient.SqlClient
      yield* Effect.promise(() => fc.assert(fc.asyncProperty(situation, fc.oneof(money, fc.constantFrom("edge", "over", "ignoringReserved")), (s, requested) => run(Effect.gen(function*() {
        yield* sql`DELETE FROM budget_reservations`
        const now = new Date()
        const earlier = earlierDay(now)
        const monthSpent = Option.isSome(earlier) ? [s.today, s.earlierThisMonth] : [s.today]
        const reserved = s.reserved.length === 0 ? ["0"] : s.reserved
        // The model: PostgreSQL's NUMERIC, as the ledger itself adds money.
        const [totals] = yield* sql<{ day: string; month: string; reserved: string }>`
          SELECT (${s.today}::numeric)::text AS day,
                 (SELECT sum(x::numeric) FROM unnest(${monthSpent}::text[]) AS x)::text AS month,
                 (SELECT sum(x::numeric) FROM unnest(${reserved}::text[]) AS x)::text AS reserved`
        const limits = [["daily", s.daily, totals!.day], ["monthly", s.monthly, totals!.month]] as const
        // Most cases ask for what is left under the first limit, one unit more, or what would be left if
        // reservations were forgotten: the boundaries that matter.
        const firstLimit = limits.find(([, limit]) => limit !== undefined)
        const [left] = firstLimit === undefined ? [{ edge: "0", over: "0", ignoringReserved: "0" }] : yield* sql<{ edge: string; over: string; ignoringReserved: string }>`
          SELECT greatest(0, ${firstLimit[1]!}::numeric - ${firstLimit[2]}::numeric - ${totals!.reserved}::numeric)::text AS edge,
                 greatest(0, ${firstLimit[1]!}::numeric - ${firstLimit[2]}::numeric - ${totals!.reserved}::numeric + 0.000000000001)::text AS over,
                 greatest(0, ${firstLimit[1]!}::numeric - ${firstLimit[2]}::numeric)::text AS "ignoringReserved"`
        const amount = requested === "edge" || requested === "over" || requested === "ignoringReserved" ? left![requested] : requested
        const breaches = yield* Effect.forEach(limits.filter(([, limit]) => limit !== undefined), ([budget, limit, spent]) =>
          Effect.map(sql<{ breach: boolean; committed: string }>`
            SELECT (${spent}::numeric + ${totals!.reserved}::numeric >= ${limit!}::numeric
                    OR ${spent}::numeric + ${totals!.reserved}::numeric + ${amount}::numeric > ${limit!}::numeric) AS breach,
                   (${spent}::numeric + ${totals!.reserved}::numeric)::text AS committed`,
          ([row]) => ({ budget, limit: limit!, ...row! })))
        const exhaustedModel = yield* Effect.forEach(limits.filter(([, limit]) => limit !== undefined), ([budget, limit, spent]) =>
          Effect.map(sql<{ out: boolean }>`SELECT ${spent}::numeric >= ${limit!}::numeric AS out`, ([row]) => row!.out ? [budget] : []))

        const env: Record<string, string> = {}
        if (s.daily !== undefined) env["COST_HARD_LIMIT_DAILY_USD"] = s.daily
        if (s.monthly !== undefined) env["COST_HARD_LIMIT_MONTHLY_USD"] = s.monthly
        const outcome = yield* Effect.gen(function*() {
          const ledger = yield* Ledger
          yield* ledger.add("m", s.today, now)
          if (Option.isSome(earlier)) yield* ledger.add("m", s.earlierThisMonth, earlier.value)
          for (const r of s.reserved) yield* sql`INSERT INTO budget_reservations (id, amount_usd) VALUES (${crypto.randomUUID()}, ${r}::numeric)`
          const guard = Context.get(yield* Layer.build(BudgetGuard.layer), BudgetGuard)
          const exhausted = yield* guard.exhausted
          const decision = yield* Effect.either(guard.reserve(BigDecimal.unsafeFromString(amount)))
          return { exhausted, decision }
        }).pipe(Effect.scoped, Effect.provide(Layer.merge(MemoryLedger.layer, configLayer(env))))

        const breached = breaches.find((b) => b.breach)
        if (breached === undefined) {
          expect(Either.isRight(outcome.decision)).toBe(true)
          const [row] = yield* sql<{ same: boolean }>`
            SELECT amount_usd = ${amount}::numeric AS same FROM budget_reservations WHERE id = ${Either.getOrThrow(outcome.decision).id}`
          // With no hard limit nothing is written; with one, exactly the worst case is held.
          expect(row?.same ?? (s.daily === undefined && s.monthly === undefined)).toBe(true)
        } else {
          const refused = Either.getLeft(outcome.decision).pipe(Option.getOrThrow)
          expect(refused).toMatchObject({ budget: breached.budget, limitUsd: format(BigDecimal.unsafeFromString(breached.limit)) })
          expect([refused.committedUsd, refused.requestedUsd].map((t) => format(BigDecimal.unsafeFromString(t))))
            .toEqual([breached.committed, amount].map((t) => format(BigDecimal.unsafeFromString(t))))
        }
        expect(Option.map(outcome.exhausted, (e) => e.budget)).toEqual(Arr.head(exhaustedModel.flat()))
      }).pipe(quiet))), { numRuns: 30 }))
    }))
})

layer(AlertLedger.layer.pipe(Layer.provideMerge(layerWith("alert_levels"))))("alert levels against PostgreSQL NUMERIC", (it) => {
  it.effect("every configured level whose share of the limit is spent is claimed once, and no other", () =>
    Effect.gen(function*() {
      const run = yield* runner
      const sql = yield* SqlClient.SqlClient
      const level = fc.tuple(fc.integer({ min: 1, max: 150 }), fc.integer({ min: 0, max: 2 })).map(([v, scale]) => format(BigDecimal.make(BigInt(v), scale)))
      // Spend at exactly one level's share of a limit half the time (the boundary), else anywhere up to twice it.
      const alerts = fc.record({
        daily: fc.option(positive, { nil: undefined }),
        monthly: fc.option(positive, { nil: undefined }),
        levels: fc.array(level, { minLength: 1, maxLength: 5 }),
        at: fc.oneof(fc.nat(4).map((i) => ({ level: i })), fc.integer({ min: 0, max: 200 }).map((percent) => ({ percent })))
      }).map((a) => {
        const base = BigDecimal.unsafeFromString(a.daily ?? a.monthly ?? "1")
        const share = "level" in a.at ? BigDecimal.unsafeFromString(a.levels[a.at.level % a.levels.length]!) : BigDecimal.make(BigInt(a.at.percent), 2)
        return { ...a, today: format(BigDecimal.multiply(base, share)) }
      })
      yield* Effect.promise(() => fc.assert(fc.asyncProperty(alerts, (a) => run(Effect.gen(function*() {
        yield* sql`DELETE FROM cost_alerts`
        const env: Record<string, string> = { COST_ALERT_LEVELS: a.levels.join(","), COST_ALERT_INTERVAL_MS: "86400000" }
        if (a.daily !== undefined) env["COST_ALERT_DAILY_USD"] = a.daily
        if (a.monthly !== undefined) env["COST_ALERT_MONTHLY_USD"] = a.monthly
        const expected = yield* Effect.forEach([["daily", a.daily], ["monthly", a.monthly]] as const, ([budget, limit]) =>
          limit === undefined ? Effect.succeed([]) : Effect.map(sql<{ level: string }>`
            SELECT DISTINCT (x::numeric)::text AS level FROM unnest(${a.levels}::text[]) AS x
            WHERE ${a.today}::numeric >= ${limit}::numeric * x::numeric ORDER BY 1`,
          (rows) => rows.map((r) => `${budget} ${format(BigDecimal.unsafeFromString(r.level))}`)))
        yield* Effect.gen(function*() {
          const monitor = Context.get(yield* Layer.build(CostMonitor.layer), CostMonitor)
          // An idle monitor (no alert budget) has no first run to wait for.
          if (a.daily !== undefined || a.monthly !== undefined) yield* firstRun
          // On the monitor's clock (the TestClock here), so the spend lands in its current day.
          const now = new Date(yield* Clock.currentTimeMillis)
          yield* Effect.flatMap(Ledger, (ledger) => ledger.add("m", a.today, now))
          yield* monitor.check
        }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(MemoryLedger.layer, MemoryChannel.layer, configLayer(env))))
        const claimed = yield* sql<{ budget: string; level: string }>`SELECT budget, level::text AS level FROM cost_alerts ORDER BY budget, level`
        expect(claimed.map((c) => `${c.budget} ${format(BigDecimal.unsafeFromString(c.level))}`).sort())
          .toEqual(expected.flat().sort())
      }).pipe(quiet))), { numRuns: 30 }))
    }))
})

