import { isDecoration, normalizeInline } from "./Normalize.js"

const MAX_HEADING_CHARS = 150
// `## Title`, also inside a numbered or bulleted item (`12. ### TITLE`), closing hashes dropped.
const ATX = /^(?:(?:\d+[.)]|[-*+])\s+)?#{1,6}\s+(.*?)(?:\s+#+)?$/
// A line that is only bold text (`**SAFETY**`, `1. **Child Endangerment**`): the usual heading of policies.
const BOLD_LINE = /^((?:\d+[.)]\s+)?)(?:\*\*|__)([^*_]{1,150}?)(?:\*\*|__)\s*:?$/
const SETEXT_UNDERLINE = /^\s*(?:=+|-{2,})\s*$/

// Emphasis markers are noise in a location hint.
const clean = (text: string): string => text.replace(/\*\*|__/g, "").trim()

const clip = (text: string): string => {
  const cleaned = clean(text)
  return cleaned.length <= MAX_HEADING_CHARS ? cleaned : `${cleaned.slice(0, MAX_HEADING_CHARS - 1)}…`
}

const normalizedInlineHeading = (text: string): string | null => {
  const atx = ATX.exec(text)
  if (atx !== null && atx[1] !== undefined && atx[1] !== "") return clip(atx[1])
  const bold = BOLD_LINE.exec(text)
  if (bold !== null && bold[2] !== undefined) return clip(`${bold[1] ?? ""}${bold[2]}`)
  return null
}

/** The heading text of a line that is an ATX or bold-only heading, else null. */
export const inlineHeading = (line: string): string | null => normalizedInlineHeading(normalizeInline(line))

/** A line with what heading detection needs of it, for callers that already computed it. */
export interface ReadLine {
  /** `normalizeInline` of the line. */
  readonly normalized: string
  /** `isDecoration` of the line. */
  readonly decoration: boolean
}

/** The heading `line` is (ATX, bold-only, or underlined by `next`, a raw line), else null. */
export const headingOfLine = (line: ReadLine, next: string | undefined): string | null => {
  if (line.decoration) return null
  const inline = normalizedInlineHeading(line.normalized)
  if (inline !== null) return inline
  return next !== undefined && line.normalized !== "" && SETEXT_UNDERLINE.test(next) ? clip(line.normalized) : null
}

/** The heading that line `index` of `lines` is (ATX, bold-only, or underlined by the next line), else null. */
export const headingAt = (lines: ReadonlyArray<string>, index: number): string | null => {
  const line = lines[index]
  if (line === undefined) return null
  return headingOfLine({ normalized: normalizeInline(line), decoration: isDecoration(line) }, lines[index + 1])
}

/** The nearest heading at or above line `index` (0-based), or null when none is found. */
export const nearestHeadingAbove = (lines: ReadonlyArray<string>, index: number): string | null => {
  for (let i = Math.min(index, lines.length - 1); i >= 0; i--) {
    const heading = headingAt(lines, i)
    if (heading !== null) return heading
  }
  return null
}
