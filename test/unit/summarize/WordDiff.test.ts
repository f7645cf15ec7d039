import { describe, expect, it } from "@effect/vitest"
import { type ChangeObject, diffWords } from "diff"
import * as fc from "fast-check"
import { normalizeInline } from "../../../src/summarize/Normalize.js"
import { boundedWordDiff, diffNormalizedWords } from "../../../src/summarize/WordDiff.js"
import { loadFixtures } from "./fixtures.js"

const plain = (changes: ReadonlyArray<ChangeObject<string>>) =>
  changes.map(({ added, count, removed, value }) => ({ added, count, removed, value }))

// Few distinct tokens make many equally short edit scripts, where only the same search picks the
// same one; the rest probe the edges of the library's word characters and of UTF-16.
const token = fc.constantFrom(
  "a", "b", "the", "and", "we", ",", ".", "(", ")", "—", "’", "x1", "a_b", "é", "Straße", "ÿ", "×", "÷",
  "ˇ", "˘", "˝", "˞", "ʰ", "Ḁ", "ỿ", "Ἀ", "日本", "😀", "\uD83D"
)
const line = fc.array(fc.tuple(token, fc.constantFrom(" ", "", "  ")), { maxLength: 40 })
  .map((parts) => normalizeInline(parts.map(([t, space]) => `${t}${space}`).join("")))
const edited = (text: string) =>
  fc.array(fc.tuple(fc.nat(3), line), { maxLength: 6 }).map((edits) => {
    const words = text.split(" ")
    for (const [kind, other] of edits) {
      const at = words.length === 0 ? 0 : other.length % words.length
      if (kind === 0) words.splice(at, 1)
      else if (kind === 1) words.splice(at, 0, other)
      else words.splice(at, 1, other)
    }
    return normalizeInline(words.join(" "))
  })

describe("diffNormalizedWords", () => {
  it("gives exactly what the diff library's diffWords gives on normalized lines, ties included", () => {
    fc.assert(
      fc.property(line.chain((before) => fc.tuple(fc.constant(before), fc.oneof(edited(before), line))), ([before, after]) => {
        expect(plain(diffNormalizedWords(before, after))).toEqual(plain(diffWords(before, after)))
      }),
      { numRuns: 3000 }
    )
  })

  it("gives exactly what diffWords gives on the edited paragraphs of the real policies", () => {
    for (const f of loadFixtures()) {
      const changed = (prefix: string) =>
        f.patch.split("\n").filter((l) => l.startsWith(prefix) && !l.startsWith(prefix.repeat(3))).map((l) => normalizeInline(l.slice(1)))
      const removed = changed("-")
      const added = changed("+")
      for (let i = 0; i < Math.min(removed.length, added.length, 20); i++) {
        expect(plain(diffNormalizedWords(removed[i]!, added[i]!))).toEqual(plain(diffWords(removed[i]!, added[i]!)))
      }
    }
  })
})

describe("boundedWordDiff", () => {
  const distinct = (count: number) => Array.from({ length: count }, (_, i) => `w${i}`)

  it("gives up on a reordered line once its step budget is spent, instead of searching (tokens x edits)", () => {
    const words = distinct(2_000)
    const before = words.join(" ")
    const after = [...words].reverse().join(" ")
    expect(boundedWordDiff(before, after, { maxSteps: 100_000 })).toBeNull()
    expect(boundedWordDiff(before, after, { maxSteps: Infinity })).not.toBeNull()
  })

  it("gives up on the reported 16,000-word reversed line with its default bounds", () => {
    const words = distinct(16_000)
    expect(boundedWordDiff(words.join(" "), [...words].reverse().join(" "))).toBeNull()
  })

  it("does not diff a line of more tokens than its cap by words", () => {
    const line = distinct(50).join(" ")
    expect(boundedWordDiff(line, `${line} more`, { maxTokens: 50 })).toBeNull()
    expect(boundedWordDiff(line, `${line} more`, { maxTokens: 51 })).toEqual(diffNormalizedWords(line, `${line} more`))
  })

  it("gives the unbounded result, within its default bounds, for every edited paragraph of the real policies", () => {
    for (const f of loadFixtures()) {
      const changed = (prefix: string) =>
        f.patch.split("\n").filter((l) => l.startsWith(prefix) && !l.startsWith(prefix.repeat(3))).map((l) => normalizeInline(l.slice(1)))
      const removed = changed("-")
      const added = changed("+")
      for (let i = 0; i < Math.min(removed.length, added.length, 20); i++) {
        expect(boundedWordDiff(removed[i]!, added[i]!)).toEqual(diffNormalizedWords(removed[i]!, added[i]!))
      }
    }
  })
})
