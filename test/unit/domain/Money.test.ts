import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Option } from "effect"
import fc from "fast-check"
import * as Money from "../../../src/domain/Money.js"

/** Any exact amount, positive or negative, from a whole number of units at any scale (an exponent too). */
const amount = fc.tuple(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: -12, max: 30 }))
  .map(([value, scale]) => BigDecimal.make(value, scale))

describe("Money", () => {
  it("writes any amount as plain decimal text that reads back as the same amount", () => {
    fc.assert(
      fc.property(amount, (d) => {
        const text = Money.format(d)
        // No exponent, no leading or trailing zeros beyond one "0" before the point, no "-0".
        expect(text).toMatch(/^(0|-?[1-9]\d*|-?(0|[1-9]\d*)\.\d*[1-9])$/)
        expect(BigDecimal.equals(BigDecimal.unsafeFromString(text), d)).toBe(true)
      }),
      { numRuns: 500 }
    )
  })

  it("writes refunds and corrections with their sign", () => {
    expect(Money.format(BigDecimal.unsafeFromString("-0.00002415"))).toBe("-0.00002415")
    expect(Money.format(BigDecimal.unsafeFromString("-12.50"))).toBe("-12.5")
    expect(Money.format(BigDecimal.unsafeFromString("-3"))).toBe("-3")
    expect(Money.format(BigDecimal.make(-25n, -3))).toBe("-25000")
  })

  it("reads every finite non-negative JSON cost, a free call's 0 included, and nothing else", () => {
    expect(Option.map(Money.fromJsonNumber(0), Money.format)).toEqual(Option.some("0"))
    expect(Option.map(Money.fromJsonNumber(2e21), Money.format)).toEqual(Option.some("2000000000000000000000"))
    for (const odd of [-0.0001, Number.NaN, Number.POSITIVE_INFINITY, "0.1", null, undefined]) {
      expect(Money.fromJsonNumber(odd)).toEqual(Option.none())
    }
    fc.assert(fc.property(fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }), (n) => {
      // The provider's number exactly: its shortest text, not a float rounding of it.
      const read = Option.getOrThrow(Money.fromJsonNumber(n))
      expect(Number(Money.format(read))).toBe(n)
    }))
  })

  it("an unknown cost is written as null, not as 0", () => {
    expect(Money.formatOption(Option.none())).toBeNull()
    expect(Money.formatOption(Option.some(BigDecimal.unsafeFromString("0.5")))).toBe("0.5")
  })

  it("sums exactly, and an empty sum is zero", () => {
    expect(Money.format(Money.sum([]))).toBe("0")
    const sum = Money.sum([BigDecimal.unsafeFromString("0.1"), BigDecimal.unsafeFromString("0.20"), BigDecimal.unsafeFromString("-0.05")])
    expect([Money.format(sum), sum.scale]).toEqual(["0.25", 2])
  })
})
