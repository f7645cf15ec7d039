import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { SpoolLine, toColumns } from "../../../src/usage/LedgerRow.js"
import { usageRow } from "../../support/UsageRows.js"

describe("ledger row", () => {
  it("a spooled row keeps its caller, and a line spooled before callers existed replays with caller NULL", () => {
    const columns = toColumns(usageRow({ caller: "reports" }))
    const line = JSON.stringify(columns)
    expect(Schema.decodeUnknownEither(SpoolLine)(line)).toEqual(Either.right(columns))
    const { caller: _caller, ...older } = columns
    expect(Schema.decodeUnknownEither(SpoolLine)(JSON.stringify(older))).toEqual(Either.right({ ...older, caller: null }))
  })
})
