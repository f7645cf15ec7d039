import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import * as Money from "../../../src/domain/Money.js"
import * as PriceTable from "../../../src/llm/PriceTable.js"

const model = (id: string, pricing: Record<string, string>) => ({ id, context_length: 128000, pricing })

const { table } = PriceTable.fromModels([
  model("openai/gpt-4o-mini", { prompt: "0.00000015", completion: "0.0000006", request: "0", input_cache_read: "0" }),
  model("openai/gpt-4o", { prompt: "0.0000025", completion: "0.00001", input_cache_read: "0.00000125" }),
  model("perplexity/sonar", { prompt: "0.000001", completion: "0.000001", request: "0.005" }),
  model("openrouter/auto", { prompt: "-1", completion: "-1" }),
  { id: "broken" }
])

const costOf = (id: string, promptTokens: number, completionTokens: number, cachedPromptTokens = 0) =>
  Option.map(PriceTable.lookup(table, id), (p) => Money.format(PriceTable.cost(p, { promptTokens, completionTokens, cachedPromptTokens })))

describe("price table", () => {
  it("prices a call exactly as OpenRouter bills it (29 x 0.15/M + 33 x 0.60/M)", () => {
    expect(costOf("openai/gpt-4o-mini", 29, 33)).toEqual(Option.some("0.00002415"))
  })

  it("bills cached prompt tokens at the cache-read price, and adds the per-request price", () => {
    // 600 x 2.5/M + 400 x 1.25/M + 100 x 10/M
    expect(costOf("openai/gpt-4o", 1000, 100, 400)).toEqual(Option.some("0.003"))
    expect(costOf("perplexity/sonar", 10, 10)).toEqual(Option.some("0.00502"))
  })

  it("bills cached tokens at the full prompt price when the model lists no cache-read price", () => {
    expect(costOf("openai/gpt-4o-mini", 1000, 0, 1000)).toEqual(Option.some("0.00015"))
  })

  it("knows no price for variable-priced, malformed or unlisted models, rather than pricing them at zero", () => {
    expect(costOf("openrouter/auto", 10, 10)).toEqual(Option.none())
    expect(costOf("broken", 10, 10)).toEqual(Option.none())
    expect(costOf("someone/else", 10, 10)).toEqual(Option.none())
    expect(table.size).toBe(3)
  })

  it("finds a dated snapshot under its listed model", () => {
    expect(costOf("openai/gpt-4o-mini-2024-07-18", 29, 33)).toEqual(Option.some("0.00002415"))
  })
})
