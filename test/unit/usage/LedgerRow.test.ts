import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either, Option, Schema } from "effect"
import fc from "fast-check"
import type { UsageRecord } from "../../../src/domain/UsageRecord.js"
import * as LedgerRow from "../../../src/usage/LedgerRow.js"
import { usageRow } from "../../support/UsageRows.js"

/** A fixed row, so assertions can name its id. */
const record = (over: Partial<UsageRecord> = {}): UsageRecord =>
  usageRow({ id: "3f1c0a4e-8a57-4f7e-9a43-0c5a3f7c2b10", requestId: "req-1", createdAt: new Date("2026-11-29T10:00:00.123Z"), latencyMs: 812, ...over })

const readBack = (columns: LedgerRow.Columns) =>
  LedgerRow.fromRow(Schema.decodeUnknownSync(LedgerRow.Row)({ ...columns, created_at: new Date(columns.created_at) }))

const records: fc.Arbitrary<UsageRecord> = fc.record({
  id: fc.uuid(),
  model: fc.string({ minLength: 1, maxLength: 100 }),
  provider: fc.option(fc.string({ maxLength: 50 })),
  promptTokens: fc.nat(1_000_000),
  completionTokens: fc.nat(1_000_000),
  totalTokens: fc.nat(2_000_000),
  costUsd: fc.option(fc.tuple(fc.bigInt({ min: 1n, max: 10n ** 20n }), fc.integer({ min: 0, max: 20 })), { nil: undefined })
    .map((c) => c === undefined ? Option.none() : Option.some(BigDecimal.normalize(BigDecimal.make(c[0], c[1])))),
  costSource: fc.constantFrom("provider" as const, "pricing" as const),
  requestId: fc.option(fc.string({ maxLength: 255 })),
  createdAt: fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }),
  status: fc.constantFrom("success" as const, "error" as const),
  errorCode: fc.option(fc.string({ maxLength: 100 })),
  attempt: fc.integer({ min: 1, max: 10 }),
  latencyMs: fc.nat(600_000),
  purpose: fc.option(fc.string({ maxLength: 100 })),
  caller: fc.option(fc.stringMatching(/^[A-Za-z0-9_.-]{1,100}$/))
}).map((r) => Option.isNone(r.costUsd) ? { ...r, costSource: "unknown" as const } : r)

describe("ledger row mapping", () => {
  it("any attempt written to the ledger reads back as the same attempt, its cost to the last digit", () => {
    fc.assert(fc.property(records, (r) => {
      const back = readBack(LedgerRow.toColumns(r))
      expect({ ...back, costUsd: Option.map(back.costUsd, String) }).toEqual({ ...r, costUsd: Option.map(r.costUsd, String) })
    }))
  })

  it("stores the cost as exact decimal text, and a cost without a source (or a source without a cost) as unknown", () => {
    expect(LedgerRow.toColumns(record())).toMatchObject({ cost_usd: "0.00002415", cost_source: "provider" })
    expect(LedgerRow.toColumns(record({ costUsd: Option.some(BigDecimal.make(15n, 11)), costSource: "pricing" })))
      .toMatchObject({ cost_usd: "0.00000000015", cost_source: "pricing" })
    expect(LedgerRow.toColumns(record({ costSource: "unknown" }))).toMatchObject({ cost_usd: null, cost_source: "unknown" })
    expect(LedgerRow.toColumns(record({ costUsd: Option.none(), costSource: "provider" }))).toMatchObject({ cost_usd: null, cost_source: "unknown" })
  })

  it("cuts over-long names to the column widths, so one odd provider cannot fail a whole batch", () => {
    const long = "x".repeat(400)
    const columns = LedgerRow.toColumns(record({ model: long, provider: long, requestId: long, errorCode: long, purpose: long }))
    expect([columns.model.length, columns.provider?.length, columns.request_id?.length, columns.error_code?.length, columns.purpose?.length])
      .toEqual([100, 50, 255, 100, 100])
    expect(LedgerRow.toColumns(record({ provider: null, requestId: null, purpose: null }))).toMatchObject({ provider: null, request_id: null, purpose: null })
  })

  it("stores the latency in whole milliseconds, never negative (a clock stepping back)", () => {
    expect(LedgerRow.toColumns(record({ latencyMs: 812.6 })).latency_ms).toBe(813)
    expect(LedgerRow.toColumns(record({ latencyMs: -3 })).latency_ms).toBe(0)
  })

  it("one INSERT of fixed text carries any number of rows, one array per column in the declared order", () => {
    const columns = Object.keys(LedgerRow.columnTypes)
    expect(LedgerRow.insertStatement).toContain(`INSERT INTO llm_api_usage (${columns.join(", ")})`)
    expect(LedgerRow.insertStatement).toContain("$1::uuid[], $2::varchar[]")
    expect(LedgerRow.insertStatement).toContain(`$${columns.length}::varchar[])`)
    expect(LedgerRow.insertStatement).toContain("ON CONFLICT (id) DO NOTHING")
    const rows = [LedgerRow.toColumns(record()), LedgerRow.toColumns(record({ id: "other", promptTokens: 7 }))]
    const parameters = LedgerRow.insertParameters(rows)
    expect(parameters).toHaveLength(columns.length)
    expect(parameters[0]).toEqual([record().id, "other"])
    expect(parameters[columns.indexOf("prompt_tokens")]).toEqual([29, 7])
  })

  it("a spool line is the row as JSON, and a line torn by a crash is skipped", () => {
    const columns = LedgerRow.toColumns(record())
    const line = JSON.stringify(columns)
    expect(Schema.decodeUnknownEither(LedgerRow.SpoolLine)(line)).toEqual(Either.right(columns))
    expect(Either.isLeft(Schema.decodeUnknownEither(LedgerRow.SpoolLine)(line.slice(0, -5)))).toBe(true)
  })
})

describe("ledger row of a summary-job item", () => {
  it("keeps the job item it was made for, and a line spooled before jobs existed replays with job_item_id NULL", () => {
    const jobItemId = "6a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7"
    const columns = LedgerRow.toColumns(record({ jobItemId }))
    expect(columns.job_item_id).toBe(jobItemId)
    expect(readBack(columns).jobItemId).toBe(jobItemId)
    expect(readBack(LedgerRow.toColumns(record())).jobItemId).toBeUndefined()
    const { job_item_id: _item, ...older } = columns
    expect(Schema.decodeUnknownEither(LedgerRow.SpoolLine)(JSON.stringify(older))).toEqual(Either.right({ ...older, job_item_id: null }))
  })
})

describe("ledger row with callers", () => {
  it("a spooled row keeps its caller, and a line spooled before callers existed replays with caller NULL", () => {
    const columns = LedgerRow.toColumns(usageRow({ caller: "reports" }))
    const line = JSON.stringify(columns)
    expect(Schema.decodeUnknownEither(LedgerRow.SpoolLine)(line)).toEqual(Either.right(columns))
    const { caller: _caller, ...older } = columns
    expect(Schema.decodeUnknownEither(LedgerRow.SpoolLine)(JSON.stringify(older))).toEqual(Either.right({ ...older, caller: null }))
  })
})
