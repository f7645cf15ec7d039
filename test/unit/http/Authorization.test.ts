import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { identify } from "../../../src/http/Authorization.js"

const digest = (s: string) => createHash("sha256").update(s).digest()

describe("identify", () => {
  const find = identify([
    { name: "default", digest: digest("tok-default-1") },
    { name: "reports", digest: digest("tok-reports-2") }
  ])

  it("names the caller whose token it is, and nobody for any other text", () => {
    expect(find("tok-reports-2")).toBe("reports")
    expect(find("tok-default-1")).toBe("default")
    for (const wrong of ["", "tok-reports-", "tok-reports-22", "TOK-REPORTS-2", "tok-default-1 "]) expect(find(wrong)).toBeNull()
  })
})
