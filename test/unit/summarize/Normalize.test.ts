import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import { fromTexts, fromUnifiedDiff } from "../../../src/summarize/Change.js"
import { isCosmeticOnly, normalizeInline } from "../../../src/summarize/Normalize.js"
import { fixture, loadFixtures } from "./fixtures.js"

const doc = [
  "Privacy Policy",
  "==============",
  "",
  "We collect your name and email address to run the service.",
  "",
  "* We share data with payment processors.",
  "* We keep logs for 30 days.",
  "",
  "| Purpose | Data |",
  "| --- | --- |",
  "| Billing | name<br>card number |",
  ""
].join("\n")

// Every rule of normalizeInline applied in turn, as a reference for its shortcut on normal lines.
const normalizedInFull = (text: string) =>
  text.replace(/[\u00AD\u200B-\u200D\u2060\uFEFF]/g, "").replace(/&(?:nbsp|#160|#xa0);/gi, " ").replace(/<br\s*\/?>/gi, " ")
    .replace(/\\([\\`*_{}[\]()#+\-.!|<>~])/g, "$1").replace(/\s+/g, " ").trim()

describe("normalizeInline", () => {
  it("removes invisible characters and turns non-breaking spaces and <br> into single spaces", () => {
    expect(normalizeInline("\uFEFF  a\u00A0b\u202Fc\u200Bd\u200C\u200De\u2060f<br>g<BR />h\t\ti  ")).toBe("a b cdef g h i")
  })

  it("gives what all its rules give, also on lines it finds already normal", () => {
    const piece = fc.constantFrom(
      "a", "word", " ", "  ", "\t", "\n", "\u00A0", "\u3000", "\u00AD", "\u200B", "\uFEFF", "\u2060", "&nbsp;", "&#XA0;", "&amp;", "&",
      "&nb", "sp;", "<br>", "<BR />", "<br", "/>", "<b>", "<", "\\.", "\\\\", "\\", "é", "’", "😀", "-", "="
    )
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 14 }).map((pieces) => pieces.join("")), (text) => {
        expect(normalizeInline(text)).toBe(normalizedInFull(text))
      }),
      { numRuns: 5000 }
    )
  })
})

describe("isCosmeticOnly", () => {
  it.each([
    ["a non-breaking space swapped for a space", doc.replace("your name", "your\u00A0name")],
    ["a narrow no-break space", doc.replace("30 days", "30\u202Fdays")],
    ["a zero-width space inserted", doc.replace("collect", "col\u200Blect")],
    ["word joiners and zero-width joiners", doc.replace("payment", "pay\u2060ment\u200D")],
    ["a byte-order mark at the start", `\uFEFF${doc}`],
    ["a re-indented block", doc.replace("* We share", "    * We share").replace("* We keep", "    * We keep")],
    ["trailing spaces and doubled spaces", doc.replace("run the service.", "run  the service.   ")],
    ["a setext underline of another length", doc.replace("==============", "=====")],
    ["<br> written differently", doc.replace("name<br>card", "name<br/>card")],
    ["a paragraph re-wrapped", doc.replace("email address to", "email address\nto")],
    ["blank lines added", doc.replace("\n\n* We", "\n\n\n\n* We")]
  ])("is true for %s", (_, after) => {
    expect(isCosmeticOnly(fromTexts(doc, after))).toBe(true)
  })

  it("is true for several kinds of churn at once, and for identical texts", () => {
    const after = `\uFEFF${doc.replace("your name", "your\u00A0name").replace("* We keep", "   * We keep").replace("=====", "===")}`
    expect(isCosmeticOnly(fromTexts(doc, after))).toBe(true)
    expect(isCosmeticOnly(fromTexts(doc, doc))).toBe(true)
  })

  it.each([
    ["one word changed", doc.replace("30 days", "90 days")],
    ["a zero-width space next to a real change", doc.replace("collect", "coll\u200Bect and sell")],
    ["a line added", doc.replace("* We keep", "* We sell data to advertisers.\n* We keep")],
    ["a heading renamed along with its underline", doc.replace("Privacy Policy\n==============", "Privacy Notice\n==============")],
    ["a word split in two", doc.replace("payment", "pay ment")]
  ])("is false for %s", (_, after) => {
    expect(isCosmeticOnly(fromTexts(doc, after))).toBe(false)
  })

  it("is false for a one-word change inside a 5,000-character line of a real policy", () => {
    const { before } = fixture("05")
    const lines = before.split("\n")
    const longest = [...lines.keys()].sort((a, b) => lines[b]!.length - lines[a]!.length).slice(0, 2).sort((a, b) => a - b)
    const paragraph = `${lines[longest[0]!]} ${lines[longest[1]!]}`
    expect(paragraph.length).toBeGreaterThan(5000)
    const withParagraph = [...lines.slice(0, longest[0]), paragraph, ...lines.slice(longest[0]! + 1)].join("\n")
    const middle = paragraph.indexOf(" the ", 2500)
    const changed = withParagraph.replace(paragraph, `${paragraph.slice(0, middle)} a ${paragraph.slice(middle + 5)}`)
    expect(isCosmeticOnly(fromTexts(withParagraph, changed))).toBe(false)
  })

  it.each(loadFixtures().map((f) => [f.name, f] as const))("is false for the real change %s, in both input forms", (_, f) => {
    expect(isCosmeticOnly(fromTexts(f.before, f.after))).toBe(false)
    expect(isCosmeticOnly(Either.getOrThrow(fromUnifiedDiff(f.patch)))).toBe(false)
  })
})
