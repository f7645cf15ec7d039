import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Option } from "effect"
import { format, fromJsonNumber } from "../../../src/domain/Money.js"
import { parseUsage } from "../../../src/llm/OpenRouter.js"

const text = (raw: string) => Option.map(parseUsage(JSON.parse(raw))!.costUsd, format)

describe("cost parsing", () => {
  it("keeps OpenRouter's usage.cost exactly", () => {
    expect(text(`{"prompt_tokens":29,"completion_tokens":33,"total_tokens":62,"cost":0.00002415,"is_byok":false}`))
      .toEqual(Option.some("0.00002415"))
  })

  it("never goes through float arithmetic: 0.1 + 0.2 is 0.3", () => {
    const sum = BigDecimal.sum(Option.getOrThrow(fromJsonNumber(0.1)), Option.getOrThrow(fromJsonNumber(0.2)))
    expect(format(sum)).toBe("0.3")
  })

  it("writes tiny and exponent-form costs as plain decimals", () => {
    expect(Option.map(fromJsonNumber(1e-7), format)).toEqual(Option.some("0.0000001"))
    expect(Option.map(fromJsonNumber(1.5e-10), format)).toEqual(Option.some("0.00000000015"))
    expect(format(BigDecimal.unsafeFromString("12.50"))).toBe("12.5")
  })

  it("does not add upstream_inference_cost unless the key is BYOK", () => {
    const details = `"cost_details":{"upstream_inference_cost":0.0001}`
    expect(text(`{"prompt_tokens":1,"completion_tokens":1,"cost":0.00002,"is_byok":false,${details}}`)).toEqual(Option.some("0.00002"))
    expect(text(`{"prompt_tokens":1,"completion_tokens":1,"cost":0.00002,"is_byok":true,${details}}`)).toEqual(Option.some("0.00012"))
  })

  it("a usage without cost has an unknown cost, not zero", () => {
    expect(text(`{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}`)).toEqual(Option.none())
  })
})
