import { Schema } from "effect"
import type { Change } from "./Change.js"
import { addedLines, removedLines } from "./Change.js"
import type { Section } from "./Condense.js"
import { stripInvisible } from "./Normalize.js"
import type { AnswerChange, Grounding, Kind } from "./StructuredSummary.js"

// Both the change and the quotes go through the same normalization, so a quote is found whatever
// the typography of either side: curly or straight quotes, any dash, NBSP, line breaks, emphasis.
const SPACE_ENTITY = /&(?:nbsp|#160|#xa0);/gi
const LINE_BREAK_TAG = /<br\s*\/?>/gi
const MARKDOWN_ESCAPE = /\\([\\`*_{}[\]()#+\-.!|<>~])/g
// `[text](url)` reads as `text`; a quote may start or end inside a link, so targets and brackets go on their own.
const LINK_TARGET = /\]\([^)\s]*\)/g
const BRACKETS = /[[\]]/g
// Emphasis, strong, strikethrough and code marks: `*`, `_`, `~~`, backticks.
const EMPHASIS = /\*+|_+|~~|`+/g
const SINGLE_QUOTES = /[\u2018\u2019\u201A\u201B\u2032\u00B4]/g
const DOUBLE_QUOTES = /[\u201C\u201D\u201E\u201F\u2033\u00AB\u00BB]/g
const DASHES = /[\u2010-\u2015\u2212\uFE58\uFE63\uFF0D]/g
const ELLIPSIS = /\u2026/g
const WHITESPACE_RUN = /\s+/g
// The condensed change's own notes (see Condense.ts): a repeated edit's count, where moved text came
// from. A model may copy them into a quote; they are not the document's words, on either side.
const REPEAT_NOTE = /\s*\(the same change on \d+ lines(?:, in \d+ sections)?\)|\s*\(the same change on[^)]*$/g
const MOVE_NOTE = /\((?:moved from [^)]*|moved within [^)]*|section moved: [^)]*|moved)\)\s*/g

/** Text as the grounding check compares it: typography and Markdown marks folded, whitespace collapsed, lower case. */
export const normalizeForGrounding = (text: string): string =>
  stripInvisible(text)
    .replace(REPEAT_NOTE, "")
    .replace(MOVE_NOTE, "")
    .replace(SPACE_ENTITY, " ")
    .replace(LINE_BREAK_TAG, " ")
    .replace(MARKDOWN_ESCAPE, "$1")
    .replace(LINK_TARGET, "")
    .replace(BRACKETS, "")
    .replace(EMPHASIS, "")
    .replace(SINGLE_QUOTES, "'")
    .replace(DOUBLE_QUOTES, "\"")
    .replace(DASHES, "-")
    .replace(ELLIPSIS, "...")
    .replace(WHITESPACE_RUN, " ")
    .trim()
    .toLowerCase()

type Side = "added" | "removed"

const sideOf = (kind: Kind): Side => (kind === "removed" ? "removed" : "added")

// The condensed change marks words in place: `[-removed-]` and `{+added+}`.
const REMOVED_MARK = /\[-([\s\S]*?)-\]/g
const ADDED_MARK = /\{\+([\s\S]*?)\+\}/g

/** One version of a line with word marks: the other version's words dropped, this one's unwrapped. */
const versionOf = (text: string, side: Side): string =>
  side === "added" ? text.replace(REMOVED_MARK, "").replace(ADDED_MARK, "$1") : text.replace(ADDED_MARK, "").replace(REMOVED_MARK, "$1")

const LINE_MARKER = /^[-+~] /
const SURROUNDING_QUOTES = /^["'\u2018\u2019\u201C\u201D\u00AB\u00BB\s]+|["'\u2018\u2019\u201C\u201D\u00AB\u00BB\s]+$/g
// A quote may leave words out with an ellipsis; each piece must then be found.
const ELISION = /\s*(?:\[\s*(?:…|\.\.\.)\s*\]|…|\.\.\.)\s*/

/** The pieces of a quote to look for: marks of the notation undone, quote marks around it and elisions removed. */
export const quotePieces = (quote: string, kind: Kind): ReadonlyArray<string> =>
  versionOf(quote.trim().replace(LINE_MARKER, ""), sideOf(kind))
    .replace(SURROUNDING_QUOTES, "")
    .split(ELISION)
    .map(normalizeForGrounding)
    .filter((piece) => piece !== "")

const found = (pieces: ReadonlyArray<string>, text: string): boolean => pieces.length > 0 && pieces.every((piece) => text.includes(piece))

// `[… N more characters]`: text the condensed change left out.
const CUT_NOTICE = /\s*\[… \d+ more characters\]$/

/** A section's added and removed text as the condensed change shows it. */
const sectionSides = (section: Section): Record<Side, string> => {
  const sides: Record<Side, Array<string>> = { added: [], removed: [] }
  for (const raw of section.text.split("\n")) {
    const line = raw.replace(CUT_NOTICE, "")
    if (line.startsWith("+ ")) sides.added.push(line.slice(2))
    else if (line.startsWith("- ")) sides.removed.push(line.slice(2))
    else if (line.startsWith("~ ")) {
      sides.added.push(versionOf(line.slice(2), "added"))
      sides.removed.push(versionOf(line.slice(2), "removed"))
    }
  }
  return { added: normalizeForGrounding(sides.added.join("\n")), removed: normalizeForGrounding(sides.removed.join("\n")) }
}

const Sides = Schema.Struct({ added: Schema.String, removed: Schema.String })

/**
 * What the grounding check needs of a change, normalized: the whole added and removed text and
 * each condensed section's. Small beside the change, so the worker that condenses it sends it back.
 */
export const GroundingBasis = Schema.Struct({ ...Sides.fields, sections: Schema.Array(Sides) })
export type GroundingBasis = typeof GroundingBasis.Type

export const groundingBasis = (change: Change, sections: ReadonlyArray<Section>): GroundingBasis => ({
  added: normalizeForGrounding(addedLines(change).join("\n")),
  removed: normalizeForGrounding(removedLines(change).join("\n")),
  sections: sections.map(sectionSides)
})

export interface MissingQuote {
  /** Index of the item in the answer. */
  readonly item: number
  readonly quote: string
  readonly kind: Kind
}

export interface GroundingReport {
  /** Per item: every quote found. */
  readonly grounded: ReadonlyArray<boolean>
  readonly missing: ReadonlyArray<MissingQuote>
  readonly counts: Grounding
}

export interface Grounder {
  readonly check: (changes: ReadonlyArray<AnswerChange>) => GroundingReport
}

/**
 * Checks quotes against one change: a quote of an `added` or `modified` item must be in the text
 * the change adds, of a `removed` item in the text it removes. Lines of one side are joined, so a
 * quote may span a line break. Coverage counts the sections of the condensed change that hold at
 * least one grounded quote.
 */
export const makeGrounder = (basis: GroundingBasis): Grounder => {
  const whole: Record<Side, string> = { added: basis.added, removed: basis.removed }
  const bySection = basis.sections
  const sectionCount = bySection.length
  const check = (changes: ReadonlyArray<AnswerChange>): GroundingReport => {
    const missing: Array<MissingQuote> = []
    const covered = new Set<number>()
    let quotes = 0
    let groundedQuotes = 0
    const grounded = changes.map((change, item) => {
      const side = sideOf(change.kind)
      let all = true
      for (const quote of change.quotes) {
        quotes++
        const pieces = quotePieces(quote, change.kind)
        if (!found(pieces, whole[side])) {
          all = false
          missing.push({ item, quote, kind: change.kind })
          continue
        }
        groundedQuotes++
        bySection.forEach((sides, index) => {
          if (found(pieces, sides[side])) covered.add(index)
        })
      }
      return all
    })
    return { grounded, missing, counts: { quotes, grounded: groundedQuotes, sections: sectionCount, covered: covered.size } }
  }
  return { check }
}
