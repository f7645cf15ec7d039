import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { processChange } from "../../../src/summarize/ChangeWork.js"

const policy = (whatWeDo: ReadonlyArray<string>, whatWeNeverDo: ReadonlyArray<string>) =>
  `# Privacy\n\n## What we do\n\n${whatWeDo.join("\n\n")}\n\n## What we never do\n\n${whatWeNeverDo.join("\n\n")}\n`

const layout = { budgetTokens: 12_000, maxParts: 8, largeChange: "split" } as const

describe("processChange", () => {
  it("does not call two sections swapping a sentence each a formatting change (the reported case)", () => {
    const before = policy(["We keep your email.", "We show you ads."], ["We sell your data.", "We read your messages."])
    const after = policy(["We keep your email.", "We sell your data."], ["We show you ads.", "We read your messages."])
    const processed = Either.getOrThrow(processChange({ before, after }, layout))
    expect(processed.cosmetic).toBe(false)
    expect(processed.changeText).toEqual({
      _tag: "Whole",
      text: "## What we do\n> (moved from \"What we never do\") We sell your data.\n\n## What we never do\n> (moved from \"What we do\") We show you ads."
    })
  })

  it("calls whitespace and blank-line churn a formatting change", () => {
    const before = policy(["We keep your email."], ["We sell your data."])
    const processed = Either.getOrThrow(processChange({ before, after: before.replace("keep your", "keep  your").replace("\n\nWe sell", "\n\n\nWe sell") }, layout))
    expect(processed).toMatchObject({ cosmetic: true })
  })

  it("refuses a diff without a hunk, and hands back a given diff exactly", () => {
    const refused = processChange({ diff: "not a diff" }, layout)
    expect(Either.isLeft(refused) && refused.left._tag).toBe("InvalidDiff")
    const diff = "--- a/p\n+++ b/p\n@@ -1 +1 @@\n-We keep data for 30 days.\n+We keep data for 90 days.\n"
    expect(Either.getOrThrow(processChange({ diff }, layout)).rawDiff).toBe(diff)
  })

  it("lays a change too large for the budget out in at most maxParts parts, or truncated, as configured", () => {
    const before = Array.from({ length: 60 }, (_, i) => `## Section ${i}\n\n${`clause${i} `.repeat(300).trim()}\n`).join("\n")
    const after = before.replaceAll("clause", "term")
    const split = Either.getOrThrow(processChange({ before, after }, { budgetTokens: 1_000, maxParts: 3, largeChange: "split" })).changeText
    expect(split._tag === "Parts" && split.texts.length).toBe(3)
    expect(split._tag === "Parts" && split.texts[2]).toMatch(/too long to show whole/)
    const cut = Either.getOrThrow(processChange({ before, after }, { budgetTokens: 1_000, maxParts: 3, largeChange: "truncate" })).changeText
    expect(cut._tag === "Truncated" && cut.text).toMatch(/too long to show whole/)
  })
})
