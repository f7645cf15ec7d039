import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { processChange } from "../../../src/summarize/ChangeWork.js"

const policy = (whatWeDo: ReadonlyArray<string>, whatWeNeverDo: ReadonlyArray<string>) =>
  `# Privacy\n\n## What we do\n\n${whatWeDo.join("\n\n")}\n\n## What we never do\n\n${whatWeNeverDo.join("\n\n")}\n`

describe("processChange", () => {
  it("does not call two sections swapping a sentence each a formatting change (the reported case)", () => {
    const before = policy(["We keep your email.", "We show you ads."], ["We sell your data.", "We read your messages."])
    const after = policy(["We keep your email.", "We sell your data."], ["We show you ads.", "We read your messages."])
    const processed = Either.getOrThrow(processChange({ before, after }))
    expect(processed.cosmetic).toBe(false)
    expect(processed.sections).toContainEqual({ heading: "What we do", text: "> (moved from \"What we never do\") We sell your data." })
  })

  it("calls whitespace and blank-line churn a formatting change", () => {
    const before = policy(["We keep your email."], ["We sell your data."])
    const processed = Either.getOrThrow(processChange({ before, after: before.replace("keep your", "keep  your").replace("\n\nWe sell", "\n\n\nWe sell") }))
    expect(processed).toMatchObject({ cosmetic: true, sections: [] })
  })

  it("refuses a diff without a hunk, and hands back a given diff exactly", () => {
    const refused = processChange({ diff: "not a diff" })
    expect(Either.isLeft(refused) && refused.left._tag).toBe("InvalidDiff")
    const diff = "--- a/p\n+++ b/p\n@@ -1 +1 @@\n-We keep data for 30 days.\n+We keep data for 90 days.\n"
    expect(Either.getOrThrow(processChange({ diff })).rawDiff).toBe(diff)
  })
})
