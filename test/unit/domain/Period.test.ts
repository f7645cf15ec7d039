import { describe, expect, it } from "@effect/vitest"
import { daysOf, periodOf } from "../../../src/domain/Period.js"

describe("budget periods (UTC)", () => {
  it("a daily budget resets at UTC midnight and a monthly one on the 1st, whatever the local time", () => {
    expect(periodOf("daily", new Date("2026-11-29T23:59:59.999Z"))).toBe("2026-11-29")
    expect(periodOf("daily", new Date("2026-11-30T00:00:00.000Z"))).toBe("2026-11-30")
    expect(periodOf("monthly", new Date("2026-11-30T23:59:59.999Z"))).toBe("2026-11")
    expect(periodOf("monthly", new Date("2026-12-01T00:00:00.000Z"))).toBe("2026-12")
  })

  it("a month's spend is read from its first to its last day, February and December included", () => {
    expect(daysOf("daily", "2026-11-29")).toEqual({ from: "2026-11-29", to: "2026-11-29" })
    expect(daysOf("monthly", "2026-11")).toEqual({ from: "2026-11-01", to: "2026-11-30" })
    expect(daysOf("monthly", "2026-12")).toEqual({ from: "2026-12-01", to: "2026-12-31" })
    expect(daysOf("monthly", "2026-02")).toEqual({ from: "2026-02-01", to: "2026-02-28" })
    expect(daysOf("monthly", "2028-02")).toEqual({ from: "2028-02-01", to: "2028-02-29" })
  })
})
