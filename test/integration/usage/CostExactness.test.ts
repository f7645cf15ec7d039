import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Effect, Layer, Option, Runtime } from "effect"
import fc from "fast-check"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import * as Money from "../../../src/domain/Money.js"
import type { ModelPrice } from "../../../src/llm/Pricing.js"
import * as PriceTable from "../../../src/llm/PriceTable.js"
import { UsageRepo } from "../../../src/usage/UsageRepo.js"
import * as TestDatabase from "../../support/TestDatabase.js"
import { usageRow } from "../../support/UsageRows.js"

const Repo = UsageRepo.layer.pipe(
  Layer.provideMerge(TestDatabase.layerWith("cost_exactness")),
  Layer.provide(TestDatabase.configLayer({ DATA_DIR: mkdtempSync(Path.join(tmpdir(), "cost-")) }))
)

/** USD per token as OpenRouter writes it: up to 12 decimals, from zero to a few dollars. */
const priceText = fc.tuple(fc.bigInt({ min: 0n, max: 5_000_000_000_000n }), fc.integer({ min: 0, max: 12 }))
  .map(([units, scale]) => Money.format(BigDecimal.make(units, scale)))

const call = fc.record({
  promptTokens: fc.integer({ min: 0, max: 2_000_000 }),
  completionTokens: fc.integer({ min: 0, max: 200_000 }),
  cachedShare: fc.double({ min: 0, max: 1, noNaN: true }),
  prompt: priceText,
  completion: priceText,
  request: priceText,
  cacheRead: fc.option(priceText, { nil: null })
})

type Call = typeof call extends fc.Arbitrary<infer A> ? A : never

const priceOf = (c: Call): ModelPrice => ({
  prompt: BigDecimal.unsafeFromString(c.prompt),
  completion: BigDecimal.unsafeFromString(c.completion),
  request: BigDecimal.unsafeFromString(c.request),
  cacheRead: Option.map(Option.fromNullable(c.cacheRead), BigDecimal.unsafeFromString),
  contextLength: Option.none()
})

const cachedOf = (c: Call) => Math.floor(c.promptTokens * c.cachedShare)

const codeCost = (c: Call) =>
  PriceTable.cost(priceOf(c), { promptTokens: c.promptTokens, completionTokens: c.completionTokens, cachedPromptTokens: cachedOf(c) })

const postgresCost = (c: Call) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cached = cachedOf(c)
    const [row] = yield* sql<{ cost: string }>`
      SELECT (${c.promptTokens - cached}::numeric * ${c.prompt}::numeric
            + ${cached}::numeric * ${c.cacheRead ?? c.prompt}::numeric
            + ${c.completionTokens}::numeric * ${c.completion}::numeric
            + ${c.request}::numeric)::text AS cost`
    return Money.format(BigDecimal.unsafeFromString(row!.cost))
  })

describe("exact cost", () => {
  it.layer(Repo)("against PostgreSQL NUMERIC", (it) => {
    it.effect("for random token counts and per-token prices, the code's cost equals PostgreSQL's NUMERIC arithmetic", () =>
      Effect.gen(function*() {
        const runtime = yield* Effect.runtime<SqlClient.SqlClient>()
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(call, (c) =>
              Runtime.runPromise(runtime)(postgresCost(c)).then((expected) => {
                expect(Money.format(codeCost(c))).toBe(expected)
              })),
            { numRuns: 200 }
          )
        )
      }))

    it.effect("rows recorded with random exact costs sum, in the totals, to the last digit", () =>
      Effect.gen(function*() {
        const runtime = yield* Effect.runtime<UsageRepo | SqlClient.SqlClient>()
        let day = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 40 }), (calls) => {
              const date = new Date(Date.UTC(2040, 0, 1) + 86_400_000 * day++)
              const iso = date.toISOString().slice(0, 10)
              const costs = calls.map(codeCost)
              return Runtime.runPromise(runtime)(Effect.gen(function*() {
                const repo = yield* UsageRepo
                const sql = yield* SqlClient.SqlClient
                yield* Effect.forEach(
                  costs,
                  (cost, i) => repo.record(usageRow({ createdAt: date, costUsd: Option.some(cost), costSource: "pricing", model: `m${i % 3}` })),
                  { concurrency: "unbounded" }
                )
                const totals = yield* repo.totals(iso, iso, "model")
                const [raw] = yield* sql<{ sum: string }>`
                  SELECT sum(cost_usd)::text AS sum FROM llm_api_usage WHERE created_at = ${date}`
                return { totals, raw: raw!.sum }
              })).then(({ raw, totals }) => {
                expect(Money.format(totals.total.costUsd)).toBe(Money.format(Money.sum(costs)))
                expect(Money.format(totals.total.costUsd)).toBe(Money.format(BigDecimal.unsafeFromString(raw)))
                expect(totals.total.calls).toBe(calls.length)
              })
            }),
            { numRuns: 30 }
          )
        )
      }))
  })
})
