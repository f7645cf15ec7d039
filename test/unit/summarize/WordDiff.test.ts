import { describe, expect, it } from "@effect/vitest"
import { type ChangeObject, diffWords } from "diff"
import * as fc from "fast-check"
import { normalizeInline } from "../../../src/summarize/Normalize.js"
import { diffNormalizedWords } from "../../../src/summarize/WordDiff.js"
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
