import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { fromTexts, fromUnifiedDiff } from "../../../src/summarize/Change.js"
import { condense } from "../../../src/summarize/Condense.js"
import { groundingBasis, makeGrounder, normalizeForGrounding } from "../../../src/summarize/Grounding.js"
import type { AnswerChange, Kind } from "../../../src/summarize/StructuredSummary.js"

const patch = [
  "--- a/policy.md",
  "+++ b/policy.md",
  "@@ -1,6 +1,7 @@",
  " # Sharing",
  "-We never sell your data.",
  "+We may **sell** your \u201Cpersonal\u00A0data\u201D to partners \u2014 including",
  "+advertisers and [data brokers](https://example.com/brokers) we don't control.",
  " ",
  " # Retention",
  "-We keep logs for 30 days.",
  "+We keep logs for 90 days.",
  " Contact us.",
  ""
].join("\n")
const change = Either.getOrThrow(fromUnifiedDiff(patch))
const sections = condense(change)
const grounder = makeGrounder(groundingBasis(change, sections))

const itemQuoting = (quotes: ReadonlyArray<string>, kind: Kind = "added"): AnswerChange => ({
  topic: "data-sharing",
  kind,
  what: "w",
  impact: "i",
  severity: "high",
  quotes: quotes as AnswerChange["quotes"]
})

const groundedOf = (quote: string, kind: Kind = "added") => grounder.check([itemQuoting([quote], kind)]).grounded[0]

describe("grounding", () => {
  it("finds a quote with straight quotes and dashes where the change has curly ones and an em dash", () => {
    expect(groundedOf("your \"personal data\" to partners - including")).toBe(true)
    expect(groundedOf("data brokers we don\u2019t control")).toBe(true)
    expect(groundedOf("your \u00ABpersonal data\u00BB to partners \u2013 including")).toBe(true)
  })

  it("folds a non-breaking space on either side", () => {
    expect(groundedOf("personal data")).toBe(true)
    expect(normalizeForGrounding("personal\u00A0data")).toBe(normalizeForGrounding("personal data"))
  })

  it("ignores Markdown emphasis and link targets on either side", () => {
    expect(groundedOf("We may sell your")).toBe(true)
    expect(groundedOf("We may *sell* your")).toBe(true)
    expect(groundedOf("advertisers and data brokers we")).toBe(true)
  })

  it("finds a quote that spans a line break of the change", () => {
    expect(groundedOf("to partners \u2014 including advertisers and data brokers")).toBe(true)
  })

  it("looks for a removed item's quote in the removed text, and only there", () => {
    expect(groundedOf("We never sell your data.", "removed")).toBe(true)
    expect(groundedOf("We never sell your data.", "added")).toBe(false)
    expect(groundedOf("We keep logs for 90 days.", "removed")).toBe(false)
    expect(groundedOf("We keep logs for 90 days.", "modified")).toBe(true)
  })

  it("accepts the condensed notation's marks and elisions in a quote", () => {
    expect(groundedOf("We keep logs for [-30-]{+90+} days.", "modified")).toBe(true)
    expect(groundedOf("We keep logs for [-30-]{+90+} days.", "removed")).toBe(true)
    expect(groundedOf("We may sell … data brokers")).toBe(true)
  })

  it("does not find an invented quote, and reports it with its item", () => {
    const report = grounder.check([itemQuoting(["We keep logs for 90 days."]), itemQuoting(["We will sell your data to anyone.", "We may sell"])])
    expect(report.grounded).toEqual([true, false])
    expect(report.missing).toEqual([{ item: 1, quote: "We will sell your data to anyone.", kind: "added" }])
    expect(report.counts).toEqual({ quotes: 3, grounded: 2, sections: 2, covered: 2 })
  })

  it("counts the condensed change's sections a grounded quote falls in", () => {
    expect(sections.map((s) => s.heading)).toEqual(["Sharing", "Retention"])
    expect(grounder.check([itemQuoting(["We keep logs for 90 days."])]).counts).toEqual({ quotes: 1, grounded: 1, sections: 2, covered: 1 })
    expect(grounder.check([itemQuoting(["invented words here"])]).counts).toEqual({ quotes: 1, grounded: 0, sections: 2, covered: 0 })
    expect(grounder.check([]).counts).toEqual({ quotes: 0, grounded: 0, sections: 2, covered: 0 })
  })

  it("an empty quote or one of only marks is not grounded", () => {
    expect(groundedOf("")).toBe(false)
    expect(groundedOf("**")).toBe(false)
    expect(groundedOf("…")).toBe(false)
  })

  it("works the same on a change given as two texts", () => {
    const before = "# Terms\n\nDisputes go to court.\n"
    const after = "# Terms\n\nDisputes go to binding *arbitration*; you waive class actions.\n"
    const texts = fromTexts(before, after)
    const g = makeGrounder(groundingBasis(texts, condense(texts)))
    expect(g.check([itemQuoting(["Disputes go to binding arbitration; you waive class actions."], "modified")]).counts).toEqual({ quotes: 1, grounded: 1, sections: 1, covered: 1 })
  })
})
