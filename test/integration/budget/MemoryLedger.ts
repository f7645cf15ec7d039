import { BigDecimal, Context, Effect, Layer, Option, Ref } from "effect"
import type { UsageRecord } from "../../../src/domain/UsageRecord.js"
import type { UsageGroup, UsageTotals } from "../../../src/usage/UsageRepo.js"
import { UsageQueryError, UsageRepo } from "../../../src/usage/UsageRepo.js"

/** Controls of the in-memory ledger: add spend, make its queries fail, count the monitor's reads. */
export class MemoryLedger extends Context.Tag("test/MemoryLedger")<MemoryLedger, {
  readonly add: (model: string, costUsd: string, at: Date, caller?: string) => Effect.Effect<void>
  readonly setDown: (down: boolean) => Effect.Effect<void>
  readonly spendCalls: Effect.Effect<number>
}>() {}

const zero = BigDecimal.fromBigInt(0n)
const day = (d: Date) => d.toISOString().slice(0, 10)

const totalsOf = (rows: ReadonlyArray<UsageRecord>): UsageTotals => ({
  calls: rows.length,
  failedCalls: rows.filter((r) => r.status === "error").length,
  unknownCostCalls: rows.filter((r) => Option.isNone(r.costUsd)).length,
  promptTokens: rows.reduce((n, r) => n + r.promptTokens, 0),
  completionTokens: rows.reduce((n, r) => n + r.completionTokens, 0),
  totalTokens: rows.reduce((n, r) => n + r.totalTokens, 0),
  costUsd: rows.reduce((sum, r) => BigDecimal.sum(sum, Option.getOrElse(r.costUsd, () => zero)), zero)
})

/** `UsageRepo` over an array: the monitor's logic without the SQL ledger. */
export const layer: Layer.Layer<UsageRepo | MemoryLedger> = Layer.unwrapEffect(Effect.gen(function*() {
  const rows = yield* Ref.make<ReadonlyArray<UsageRecord>>([])
  const down = yield* Ref.make(false)
  const spendCalls = yield* Ref.make(0)
  const guard = <A>(effect: Effect.Effect<A>) =>
    Effect.flatMap(Ref.get(down), (isDown) => isDown ? Effect.fail(new UsageQueryError({ cause: "database down" })) : effect)
  const repo = UsageRepo.of({
    record: (row) => Ref.update(rows, (all) => [...all, row]),
    totals: (from, to, groupBy) =>
      guard(Effect.map(Ref.get(rows), (all) => {
        const inRange = all.filter((r) => day(r.createdAt) >= from && day(r.createdAt) <= to)
        const keyOf = (r: UsageRecord) => groupBy === "caller" ? r.caller ?? "(none)" : r.model
        const keys = [...new Set(inRange.map(keyOf))]
        const groups: Array<UsageGroup> = keys.map((key) => ({ key, ...totalsOf(inRange.filter((r) => keyOf(r) === key)) }))
        return { groups, total: totalsOf(inRange) }
      })),
    spend: (now) =>
      Ref.update(spendCalls, (n) => n + 1).pipe(Effect.zipRight(guard(Effect.map(Ref.get(rows), (all) => ({
        todayUsd: totalsOf(all.filter((r) => day(r.createdAt) === day(now))).costUsd,
        monthUsd: totalsOf(all.filter((r) => day(r.createdAt).slice(0, 7) === day(now).slice(0, 7))).costUsd
      }))))),
    callerSpend: (now) =>
      guard(Effect.map(Ref.get(rows), (all) => {
        const month = all.filter((r) => r.caller !== null && day(r.createdAt).slice(0, 7) === day(now).slice(0, 7))
        return new Map([...new Set(month.map((r) => r.caller!))].map((c) => [c, totalsOf(month.filter((r) => r.caller === c)).costUsd]))
      })),
    recent: () => Effect.succeed({ rows: [], nextCursor: null }),
    spoolDepth: Effect.succeed(0)
  })
  const controls = MemoryLedger.of({
    add: (model, costUsd, at, caller) =>
      repo.record({
        id: crypto.randomUUID(),
        model,
        provider: "test",
        promptTokens: 100,
        completionTokens: 50,
        totalTokens: 150,
        costUsd: Option.some(BigDecimal.unsafeFromString(costUsd)),
        costSource: "provider",
        requestId: null,
        createdAt: at,
        status: "success",
        errorCode: null,
        attempt: 1,
        latencyMs: 10,
        purpose: "summary",
        caller: caller ?? null
      }),
    setDown: (isDown) => Ref.set(down, isDown),
    spendCalls: Ref.get(spendCalls)
  })
  return Layer.merge(Layer.succeed(UsageRepo, repo), Layer.succeed(MemoryLedger, controls))
}))
