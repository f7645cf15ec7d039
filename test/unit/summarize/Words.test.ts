import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { forEachRun, isLetter, isLetterOrNumber, isWhitespace } from "../../../src/summarize/Words.js"

const runs = (text: string, inRun: (code: number) => boolean) => {
  const found: Array<string> = []
  forEachRun(text, inRun, (start, end) => found.push(text.slice(start, end)))
  return found
}

const piece = fc.constantFrom("a", "Z", "0", "9", " ", "_", "-", "'", "’", "é", "ß", "İ", "日", "٣", "²", "Ⅻ", "\u0301", "😀", "𝐀", "\uD800", "\uDC00", "\n", "the", "für")
const text = fc.array(piece, { maxLength: 30 }).map((pieces) => pieces.join(""))

describe("forEachRun", () => {
  it("finds the same words as the Unicode regexes it replaces", () => {
    fc.assert(
      fc.property(text, (t) => {
        expect(runs(t, isLetter)).toEqual(t.match(/\p{L}+/gu) ?? [])
        expect(runs(t, isLetterOrNumber)).toEqual(t.match(/[\p{L}\p{N}]+/gu) ?? [])
      }),
      { numRuns: 2000 }
    )
  })
})

describe("isWhitespace", () => {
  it("is `\\s` on every UTF-16 unit", () => {
    for (let code = 0; code <= 0xffff; code++) {
      if (isWhitespace(code) !== /\s/.test(String.fromCharCode(code))) expect(code).toBe("whitespace as \\s has it")
    }
  })
})
