import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { addedLines, fromTexts, fromUnifiedDiff, removedLines } from "../../../src/summarize/Change.js"
import { condense, render, wordMarks } from "../../../src/summarize/Condense.js"
import { normalizeInline } from "../../../src/summarize/Normalize.js"
import { fixture, loadFixtures } from "./fixtures.js"

const wordSet = (text: string) => new Set(text.normalize("NFC").match(/[\p{L}\p{N}]+/gu) ?? [])
const words = (count: number, seed: string) => Array.from({ length: count }, (_, i) => `${seed}${i}`).join(" ")

describe("condense", () => {
  it("marks the one changed word of a long real paragraph instead of repeating the paragraph", () => {
    const f = fixture("01")
    const text = render(condense(Either.getOrThrow(fromUnifiedDiff(f.patch))))
    expect(text).toContain("[-DISPUTNG-]{+DISPUTING+}")
    expect(text).toContain("## ONE YEAR LIMITATION PERIOD")
    expect(text).not.toContain("YOU MUST INITIATE ANY PROCEEDING")
    expect(text.length).toBeLessThan(400)
  })

  it("keeps about 20 words around a change inside a 5,000-character line and elides the rest", () => {
    const paragraph = `${words(600, "w")} liability ${words(600, "v")}`
    expect(paragraph.length).toBeGreaterThan(5000)
    const sections = condense(fromTexts(`# Terms\n\n${paragraph}\n`, `# Terms\n\n${paragraph.replace("liability", "no liability")}\n`))
    expect(sections).toHaveLength(1)
    expect(sections[0]!.heading).toBe("Terms")
    const text = sections[0]!.text
    expect(text).toBe(`~ … ${words(600, "w").split(" ").slice(-20).join(" ")} {+no +}liability ${words(19, "v")} …`)
  })

  it("shows an added or removed paragraph whole, and caps a very long one with a visible notice", () => {
    const added = `We may share ${words(150, "x")} with partners.`
    const huge = words(1200, "y")
    const before = "# Sharing\n\nWe do not sell data.\n"
    const after = `${before}\n${added}\n\n${huge}\n`
    const text = render(condense(fromTexts(before, after)))
    expect(text).toContain(`+ ${added}`)
    const capped = text.split("\n").find((line) => line.startsWith("+ y0"))!
    const shown = capped.replace(/ \[… \d+ more characters\]$/, "")
    expect(capped).toMatch(/\[… (\d+) more characters\]$/)
    expect(shown.length - 2 + Number(/(\d+) more characters/.exec(capped)![1])).toBe(huge.length)
    expect(render(condense(fromTexts(after, before)))).toContain(`- ${added}`)
  })

  it("leaves out whitespace-only pairs and invisible-character churn, keeping the real change", () => {
    const before = "# Data\n\nWe keep logs for 30 days.\n* name\n* email address\n\nContact\u00A0us at privacy@example.com.\n"
    const after = "# Data\n\nWe keep logs for 90 days.\n    * name\n    * email\u200B address\n\nContact us at privacy@example.com.\n"
    expect(render(condense(fromTexts(before, after)))).toBe("## Data\n~ We keep logs for [-30-]{+90+} days.")
  })

  it("condenses a cosmetic-only change to nothing", () => {
    expect(condense(fromTexts("Title\n=====\n\nA\u00A0b\n", "\uFEFFTitle\n===\n\nA b\n"))).toEqual([])
  })

  it("names sections by the headings found in the hunk, setext and bold ones included", () => {
    const before = "Rules\n=====\n\n**SAFETY**\n\nBe kind.\n\n## Privacy\n\nNo doxxing.\n"
    const after = "Rules\n=====\n\n**SAFETY**\n\nBe kind always.\n\n## Privacy\n\nNo doxxing, ever.\n"
    const sections = condense(fromTexts(before, after))
    expect(sections.map((s) => s.heading)).toEqual(["SAFETY", "Privacy"])
  })

  it("ignores git's `@@` context when it is a cut paragraph, not a heading", () => {
    const f = fixture("06")
    const sections = condense(Either.getOrThrow(fromUnifiedDiff(f.patch)))
    expect(sections).toEqual([{ heading: null, text: "~ Last revised: [-January-]{+April+} 2026" }])
  })

  it.each(loadFixtures().map((f) => [f.name, f] as const))("gives %s a change text shorter than its diff that keeps every word added or removed", (_, f) => {
    for (const change of [fromTexts(f.before, f.after), Either.getOrThrow(fromUnifiedDiff(f.patch))]) {
      const text = render(condense(change))
      expect(text.length).toBeLessThan(f.patch.length)
      const shown = wordSet(text)
      const removed = wordSet(removedLines(change).map(normalizeInline).join(" "))
      const added = wordSet(addedLines(change).map(normalizeInline).join(" "))
      const missing = [...added].filter((w) => !removed.has(w) && !shown.has(w)).concat([...removed].filter((w) => !added.has(w) && !shown.has(w)))
      expect(missing).toEqual([])
    }
  })
})

describe("condense: bounded word diff", () => {
  it("shows an edited paragraph as its old and new lines once the word diff's budget is spent", () => {
    const before = `# Terms\n\n${words(300, "w")} liability ${words(300, "v")}\n`
    const after = before.replace("liability", "no liability").replace("v200", "v200 only")
    expect(render(condense(fromTexts(before, after)))).toContain("{+no +}liability")
    const text = render(condense(fromTexts(before, after), { wordDiff: { maxSteps: 10 } }))
    expect(text).not.toContain("{+")
    expect(text).toContain("\n- w0 w1 w2")
    expect(text).toContain("\n+ w0 w1 w2")
  })

  it("shows the reported 16,000-word reversed line as its old and new lines, cut with a notice", () => {
    const list = Array.from({ length: 16_000 }, (_, i) => `w${i}`)
    const text = render(condense(fromTexts(`${list.join(" ")}\n`, `${[...list].reverse().join(" ")}\n`)))
    expect(text).toMatch(/^- w0 w1 w2 .* \[… \d+ more characters\]\n\+ w15999 w15998 .* \[… \d+ more characters\]$/)
  })
})

describe("condense: moved text", () => {
  const policy = (whatWeDo: ReadonlyArray<string>, whatWeNeverDo: ReadonlyArray<string>) =>
    `# Privacy\n\n## What we do\n\n${whatWeDo.join("\n\n")}\n\n## What we never do\n\n${whatWeNeverDo.join("\n\n")}\n`

  it("marks a sentence moved to another section as moved, naming where it came from (the reported case)", () => {
    const before = policy(["We keep your email.", "We show you ads."], ["We sell your data.", "We read your messages."])
    const after = policy(["We keep your email.", "We sell your data."], ["We show you ads.", "We read your messages."])
    expect(render(condense(fromTexts(before, after)))).toBe([
      "## What we do",
      "> (moved from \"What we never do\") We sell your data.",
      "",
      "## What we never do",
      "> (moved from \"What we do\") We show you ads."
    ].join("\n"))
  })

  it("marks an item of a reordered list as moved within its section", () => {
    const text = render(condense(fromTexts("## Uses\n\n- Billing\n- Security\n- Advertising\n", "## Uses\n\n- Advertising\n- Billing\n- Security\n")))
    expect(text).toMatch(/^## Uses\n> \(moved within "Uses"\) - (Advertising|Billing|Security)$/)
  })

  it("marks a section moved whole: its heading says where it was and where it is", () => {
    const before = "# T\n\n## A\n\nText a.\n\n## B\n\nText b.\n\n## C\n\nText c.\n"
    const after = "# T\n\n## A\n\nText a.\n\n## C\n\nText c.\n\n## B\n\nText b.\n"
    expect(render(condense(fromTexts(before, after)))).toBe([
      "## B",
      "> (section moved: it followed \"A\", now it follows \"C\") ## B",
      "> (moved within \"B\") Text b."
    ].join("\n"))
  })

  it("still leaves out lines that only changed their spacing or blank lines in place", () => {
    expect(condense(fromTexts("## A\n\nOne two\nthree.\n\nFour.\nFive.\n", "## A\n\nOne  two\nthree.\n\n\nFour.\n\nFive.\n"))).toEqual([])
  })
})

describe("condense: repeated edits", () => {
  it("shows the same change made on 200,000 lines once, with its count", () => {
    const diff = `--- a/list.txt\n+++ b/list.txt\n@@ -1,200000 +1,200000 @@\n${"-1\n+2\n".repeat(200_000)}`
    expect(render(condense(Either.getOrThrow(fromUnifiedDiff(diff))))).toBe("- 1 (the same change on 200000 lines)\n+ 2 (the same change on 200000 lines)")
  })

  it("counts the sections a repeated change was made in", () => {
    const before = "## A\n\nUpdated 2024.\n\nText a.\n\n## B\n\nUpdated 2024.\n\nText b.\n\n## C\n\nUpdated 2024.\n"
    const text = render(condense(fromTexts(before, before.replaceAll("2024", "2025"))))
    expect(text).toBe("## A\n- Updated 2024.\n+ Updated 2025. (the same change on 3 lines, in 3 sections)")
  })
})

describe("wordMarks", () => {
  it("joins changes separated by a space into one mark", () => {
    expect(wordMarks("we keep your data", "we sell all data")).toBe("we [-keep your-]{+sell all+} data")
  })
})
