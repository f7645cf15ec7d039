import { describe, expect, it } from "@effect/vitest"
import { BigDecimal } from "effect"
import type { CostAlert } from "../../../src/budget/AlertMessage.js"
import { payload, percent, subject, text, usd } from "../../../src/budget/AlertMessage.js"
import { daysOf, periodOf } from "../../../src/domain/Period.js"

const dec = BigDecimal.unsafeFromString

const alert: CostAlert = {
  budget: "monthly",
  period: "2026-11",
  level: dec("0.8"),
  limitUsd: dec("10"),
  spentUsd: dec("8.1234"),
  calls: 1432,
  topModels: [
    { model: "anthropic/claude-3.5-sonnet", costUsd: dec("6.5"), calls: 210 },
    { model: "openai/gpt-4o-mini", costUsd: dec("1.6234"), calls: 1222 }
  ]
}

describe("alert message", () => {
  it("the subject names budget, level, spend, limit and period", () => {
    expect(subject(alert)).toBe("[policy-summarizer] Monthly LLM budget 80% reached: $8.12 of $10.00 (2026-11)")
    expect(subject({ ...alert, budget: "daily", period: "2026-11-29", level: dec("1.0"), spentUsd: dec("0.0031"), limitUsd: dec("0.005") }))
      .toBe("[policy-summarizer] Daily LLM budget 100% reached: $0.0031 of $0.005 (2026-11-29)")
  })

  it("the body gives spend, budget, level, period, call count and the top models by cost", () => {
    const body = text(alert)
    expect(body).toContain("Spent:  $8.12 (exactly 8.1234 USD)")
    expect(body).toContain("Budget: $10.00 (monthly)")
    expect(body).toContain("Level:  80%")
    expect(body).toContain("Period: 2026-11")
    expect(body).toContain("Calls:  1432")
    expect(body.indexOf("anthropic/claude-3.5-sonnet: $6.50 in 210 calls"))
      .toBeLessThan(body.indexOf("openai/gpt-4o-mini: $1.62 in 1222 calls"))
    expect(body.indexOf("openai/gpt-4o-mini")).toBeGreaterThan(0)
  })

  it("the webhook JSON carries the same facts as exact decimal strings and a text for chat", () => {
    expect(payload(alert)).toEqual({
      text: "policy-summarizer: Monthly LLM budget 80% reached: $8.12 of $10.00 (2026-11)",
      budget: "monthly",
      period: "2026-11",
      level: "0.8",
      limitUsd: "10",
      spentUsd: "8.1234",
      calls: 1432,
      topModels: [
        { model: "anthropic/claude-3.5-sonnet", costUsd: "6.5", calls: 210 },
        { model: "openai/gpt-4o-mini", costUsd: "1.6234", calls: 1222 }
      ]
    })
  })

  it("amounts show cents, and four decimals under a dollar", () => {
    expect(usd(dec("1234.567"))).toBe("$1234.57")
    expect(usd(dec("0.000049"))).toBe("$0.00")
    expect(usd(dec("0.00005"))).toBe("$0.0001")
    expect(usd(dec("0.5"))).toBe("$0.50")
    expect(percent(dec("0.125"))).toBe("12.5%")
  })
})

describe("periods", () => {
  it("are the UTC day and month, so 23:59 UTC and 00:00 UTC fall in different ones", () => {
    expect(periodOf("daily", new Date("2026-11-30T23:59:59.999Z"))).toBe("2026-11-30")
    expect(periodOf("daily", new Date("2026-12-01T00:00:00Z"))).toBe("2026-12-01")
    expect(periodOf("monthly", new Date("2026-11-30T23:59:59.999Z"))).toBe("2026-11")
    expect(periodOf("monthly", new Date("2026-12-01T00:00:00Z"))).toBe("2026-12")
  })

  it("cover their days, leap Februaries included", () => {
    expect(daysOf("daily", "2026-11-29")).toEqual({ from: "2026-11-29", to: "2026-11-29" })
    expect(daysOf("monthly", "2028-02")).toEqual({ from: "2028-02-01", to: "2028-02-29" })
    expect(daysOf("monthly", "2026-12")).toEqual({ from: "2026-12-01", to: "2026-12-31" })
  })
})
