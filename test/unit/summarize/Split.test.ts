import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { fromTexts } from "../../../src/summarize/Change.js"
import { condense, render, type Section } from "../../../src/summarize/Condense.js"
import { buildMessages, overheadTokens } from "../../../src/summarize/Prompt.js"
import { plan, planWithin, truncate } from "../../../src/summarize/Split.js"
import { estimateMessagesTokens, estimateTokens } from "../../../src/summarize/Tokens.js"
import { loadFixtures } from "./fixtures.js"

/** The words of the change lines, without headings and the markers splitting adds. */
const contentWords = (texts: ReadonlyArray<string>) =>
  texts
    .flatMap((text) => text.split("\n"))
    .filter((line) => !line.startsWith("## "))
    .map((line) => line.replace(/^[-+~] (… )?/, ""))
    .join(" ")
    .split(/\s+/)
    .filter((word) => word !== "")

const word = fc.stringMatching(/^[a-z]{1,12}[.,;]?$/)
const line = fc.tuple(fc.constantFrom("- ", "+ ", "~ "), fc.array(word, { minLength: 1, maxLength: 400 })).map(([marker, words]) => `${marker}${words.join(" ")}`)
const section: fc.Arbitrary<Section> = fc.record({
  heading: fc.option(fc.array(word, { minLength: 1, maxLength: 8 }).map((w) => w.join(" ")), { nil: null }),
  text: fc.array(line, { minLength: 1, maxLength: 12 }).map((lines) => lines.join("\n"))
})

describe("plan", () => {
  it("keeps every part within the budget and every word of every section, in order", () => {
    fc.assert(
      fc.property(fc.array(section, { minLength: 1, maxLength: 15 }), fc.integer({ min: 60, max: 3000 }), (sections, budget) => {
        const parts = plan(sections, budget)
        for (const part of parts) {
          expect(part.tokens).toBeLessThanOrEqual(budget)
          expect(part.tokens).toBe(estimateTokens(part.text))
        }
        expect(contentWords(parts.map((p) => p.text))).toEqual(contentWords(sections.map((s) => s.text)))
      }),
      { numRuns: 150 }
    )
  })

  it("leaves sections that fit untouched and groups them in order", () => {
    const sections = [
      { heading: "A", text: "+ one" },
      { heading: null, text: "- two" },
      { heading: "C", text: "~ [-three-]{+3+}" }
    ]
    expect(plan(sections, 10_000)).toEqual([{ sections, text: render(sections), tokens: estimateTokens(render(sections)) }])
    expect(plan(sections, 6).map((part) => part.sections)).toEqual([sections.slice(0, 2), sections.slice(2)])
  })

  it("cuts a paragraph larger than the budget at sentence ends, marking the continuation", () => {
    const sentence = (i: number) => `Sentence number ${i} says something about your data.`
    const paragraph = `+ ${Array.from({ length: 60 }, (_, i) => sentence(i)).join(" ")}`
    const parts = plan([{ heading: "Data", text: paragraph }], 120)
    expect(parts.length).toBeGreaterThan(1)
    for (const part of parts) expect(part.text.startsWith("## Data\n+ ")).toBe(true)
    expect(parts[1]!.text).toMatch(/^## Data\n\+ … Sentence number \d+ says/)
  })

  const huge = loadFixtures().filter((f) => f.kind === "huge")
  it.each(huge.map((f) => [f.name, f] as const))("splits the huge change %s into prompts within 12k tokens", (_, f) => {
    const sections = condense(fromTexts(f.before, f.after))
    const budget = 12_000
    const parts = plan(sections, budget - overheadTokens())
    expect(parts.length).toBeGreaterThanOrEqual(1)
    parts.forEach((part, index) => {
      const prompt = estimateMessagesTokens(buildMessages({ changeText: part.text, part: { index: index + 1, total: parts.length } }))
      expect(prompt).toBeLessThanOrEqual(budget)
    })
    expect(contentWords(parts.map((p) => p.text))).toEqual(contentWords(sections.map((s) => s.text)))
  })

  it("needs several parts for the largest fixture", () => {
    const f = huge.find((h) => h.name.startsWith("39"))!
    expect(plan(condense(fromTexts(f.before, f.after)), 12_000 - overheadTokens()).length).toBeGreaterThanOrEqual(4)
  })
})

describe("truncate", () => {
  const sections = Array.from({ length: 10 }, (_, i) => ({ heading: `Section ${i}`, text: `+ ${"word ".repeat(200).trim()}` }))

  it("keeps what fits and ends with a visible notice of what was left out", () => {
    const result = truncate(sections, 700)
    expect(estimateTokens(result.text)).toBeLessThanOrEqual(700)
    expect(result.omittedChars).toBeGreaterThan(0)
    expect(result.omittedSections).toBeGreaterThan(0)
    expect(result.text.startsWith("## Section 0\n+ word")).toBe(true)
    expect(result.text.endsWith(`[… the change is too long to show whole: ${result.omittedChars} more characters in ${result.omittedSections} more sections were left out]`)).toBe(true)
    expect(result.text.length + result.omittedChars).toBeGreaterThanOrEqual(render(sections).length)
  })

  it("changes nothing when the whole change fits", () => {
    expect(truncate(sections, 100_000)).toEqual({ text: render(sections), omittedChars: 0, omittedSections: 0 })
  })
})

describe("planWithin", () => {
  const sections = Array.from({ length: 40 }, (_, i) => ({ heading: `Section ${i}`, text: `+ ${`word${i} `.repeat(200).trim()}` }))

  it("stops at the maximum number of parts, the last ending with the visible truncation notice", () => {
    expect(plan(sections, 1_000).length).toBeGreaterThan(4)
    const parts = planWithin(sections, 1_000, 4)
    expect(parts).toHaveLength(4)
    for (const part of parts) expect(part.tokens).toBeLessThanOrEqual(1_000)
    expect(parts.slice(0, -1).some((part) => part.text.includes("too long to show whole"))).toBe(false)
    expect(parts.at(-1)!.text).toMatch(/\[… the change is too long to show whole: \d+ more characters in \d+ more sections were left out\]$/)
    expect(parts[0]!.text.startsWith("## Section 0\n+ word0")).toBe(true)
  })

  it("is plan when the change needs no more parts than allowed", () => {
    expect(planWithin(sections, 1_000, 1_000)).toEqual(plan(sections, 1_000))
  })
})
