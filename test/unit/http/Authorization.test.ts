import { describe, expect, it } from "@effect/vitest"
import { identify } from "../../../src/http/Authorization.js"

describe("identify", () => {
  const find = identify([
    { name: "default", token: "tok-default-1" },
    { name: "reports", token: "tok-reports-22" }
  ])

  it("names the caller whose token it is, and nobody for any other text", () => {
    expect(find("tok-reports-22")).toBe("reports")
    expect(find("tok-default-1")).toBe("default")
    // Shorter, longer, a prefix padded as the buffer pads it, another case, trailing space, multi-byte.
    for (const wrong of ["", "tok-reports-", "tok-reports-2", "tok-reports-222", "tok-default-1\u0000", "TOK-REPORTS-22", "tok-default-1 ", "tok-défault-1"]) {
      expect(find(wrong)).toBeNull()
    }
  })
})
