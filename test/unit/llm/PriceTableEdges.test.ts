import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Effect, Option } from "effect"
import fc from "fast-check"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import * as Money from "../../../src/domain/Money.js"
import type { ModelPrice } from "../../../src/llm/Pricing.js"
import * as PriceTable from "../../../src/llm/PriceTable.js"

const dec = BigDecimal.unsafeFromString
const text = (d: BigDecimal.BigDecimal) => Money.format(d)
const shown = (p: ModelPrice) => ({
  prompt: text(p.prompt),
  completion: text(p.completion),
  request: text(p.request),
  cacheRead: Option.map(p.cacheRead, text),
  contextLength: p.contextLength
})
const priceOf = (pricing: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  Option.map(PriceTable.lookup(PriceTable.fromModels([{ id: "m", pricing, ...extra }]).table, "m"), shown)

describe("price table: reading OpenRouter's prices", () => {
  it("keeps every listed price exactly, and no request or context price it was not given", () => {
    expect(priceOf({ prompt: "0.0000025", completion: "0.00001", request: "0.005", input_cache_read: "0.00000125" }, { context_length: 128_000 }))
      .toEqual(Option.some({ prompt: "0.0000025", completion: "0.00001", request: "0.005", cacheRead: Option.some("0.00000125"), contextLength: Option.some(128_000) }))
    expect(priceOf({ prompt: "1", completion: "2", request: null, input_cache_read: null }, { context_length: null }))
      .toEqual(Option.some({ prompt: "1", completion: "2", request: "0", cacheRead: Option.none(), contextLength: Option.none() }))
    expect(priceOf({ prompt: "1", completion: "2", request: "-1", input_cache_read: "1e-7" }))
      .toEqual(Option.some({ prompt: "1", completion: "2", request: "0", cacheRead: Option.none(), contextLength: Option.none() }))
  })

  it("a model whose prompt or completion price is not a plain decimal is left out, the others kept", () => {
    for (const odd of ["-1", "1e-7", "0.", ".5", "", " 1", "1 ", "1.2.3", "free"]) {
      expect(priceOf({ prompt: odd, completion: "1" })).toEqual(Option.none())
      expect(priceOf({ prompt: "1", completion: odd })).toEqual(Option.none())
    }
    const { table, wire } = PriceTable.fromModels([{ id: "a", pricing: { prompt: "1", completion: "1" } }, { id: "b", pricing: { prompt: "x", completion: "1" } }, null])
    expect([[...table.keys()], wire.map((m) => m.id)]).toEqual([["a"], ["a"]])
  })

  it("a zero cache-read price beside a paid prompt means not listed; a free model's zero is a real zero", () => {
    expect(priceOf({ prompt: "0.000001", completion: "0.000002", input_cache_read: "0" })?.pipe(Option.map((p) => p.cacheRead)))
      .toEqual(Option.some(Option.none()))
    expect(priceOf({ prompt: "0", completion: "0", input_cache_read: "0" })?.pipe(Option.map((p) => p.cacheRead)))
      .toEqual(Option.some(Option.some("0")))
  })

  it("configured overrides price a model exactly, with no cache-read price", () => {
    const table = PriceTable.fromOverrides({ "local/llama": { prompt: "0.000001", completion: "0.000003", request: "0.01" }, "local/free": { prompt: "0", completion: "0" }, "local/pricey": { prompt: "1", completion: "1", request: "12.5" } })
    expect(Option.map(PriceTable.lookup(table, "local/llama"), shown)).toEqual(Option.some({
      prompt: "0.000001", completion: "0.000003", request: "0.01", cacheRead: Option.none(), contextLength: Option.none()
    }))
    expect(Option.map(PriceTable.lookup(table, "local/free"), (p) => text(p.request))).toEqual(Option.some("0"))
    expect(Option.map(PriceTable.lookup(table, "local/pricey"), (p) => text(p.request))).toEqual(Option.some("12.5"))
  })

  it("only a trailing date names a snapshot, and a listed exact id wins over its undated base", () => {
    const table = PriceTable.fromOverrides({
      "v/m": { prompt: "1", completion: "1" },
      "v/m-2024-07-18": { prompt: "2", completion: "2" },
      "v/m-preview": { prompt: "3", completion: "3" }
    })
    const prompt = (id: string) => Option.map(PriceTable.lookup(table, id), (p) => text(p.prompt))
    expect(prompt("v/m-2024-07-18")).toEqual(Option.some("2"))
    expect(prompt("v/m-2025-01-31")).toEqual(Option.some("1"))
    expect(prompt("v/m-2025-01-31-beta")).toEqual(Option.none())
    expect(prompt("v/m-20250131")).toEqual(Option.none())
    // An unlisted dated preview is not another listed model's price.
    expect(prompt("v/m-2025-01-31-preview")).toEqual(Option.none())
  })
})

describe("price table: the cost of a call", () => {
  const price: ModelPrice = { prompt: dec("0.000003"), completion: dec("0.000015"), request: dec("0.0004"), cacheRead: Option.some(dec("0.0000003")), contextLength: Option.none() }

  it("is exact against a sum in whole nano-dollars for any token counts", () => {
    fc.assert(fc.property(fc.nat(2_000_000), fc.nat(2_000_000), fc.nat(2_000_000), (promptTokens, completionTokens, cached) => {
      const cachedPromptTokens = Math.min(cached, promptTokens)
      const nano = BigInt(promptTokens - cachedPromptTokens) * 3_000n + BigInt(cachedPromptTokens) * 300n + BigInt(completionTokens) * 15_000n + 400_000n
      expect(BigDecimal.equals(PriceTable.cost(price, { promptTokens, completionTokens, cachedPromptTokens }), BigDecimal.make(nano, 9))).toBe(true)
    }))
  })

  it("never bills more cached tokens than prompt tokens, nor any negative or fractional count", () => {
    const cost = (promptTokens: number, completionTokens: number, cachedPromptTokens: number) =>
      text(PriceTable.cost(price, { promptTokens, completionTokens, cachedPromptTokens }))
    // 100 prompt tokens all read from cache: 100 x 0.3/M + the request price.
    expect(cost(100, 0, 500)).toBe("0.00043")
    expect(cost(100, 0, -5)).toBe("0.0007")
    expect(cost(-10, -10, 0)).toBe("0.0004")
    expect(cost(-10, 0, 5)).toBe("0.0004")
    expect(cost(10.9, 1.9, 0)).toBe("0.000445")
  })
})

describe("price table: the saved copy", () => {
  it.scoped("a saved table loads back the same, and a missing file is an error, not an empty table", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "price-table-"))),
        (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
      )
      const file = Path.join(dir, "not", "yet", "there", "prices.json")
      const { table, wire } = PriceTable.fromModels([
        { id: "openai/gpt-4o", context_length: 128_000, pricing: { prompt: "0.0000025", completion: "0.00001", input_cache_read: "0.00000125" } },
        { id: "perplexity/sonar", pricing: { prompt: "0.000001", completion: "0.000001", request: "0.005" } }
      ])
      const base = "https://openrouter.ai/api/v1"
      const missing = yield* Effect.flip(PriceTable.load(file, base))
      expect(missing._tag).toBe("PriceFileError")
      yield* PriceTable.save(file, base, wire)
      const back = yield* PriceTable.load(file, base)
      expect([...back.entries()].map(([id, p]) => [id, shown(p)])).toEqual([...table.entries()].map(([id, p]) => [id, shown(p)]))
    }))
})
