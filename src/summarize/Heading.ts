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

/** The heading text of a line that is an ATX or bold-only heading, else null. */
export const inlineHeading = (line: string): string | null => {
  const text = normalizeInline(line)
  const atx = ATX.exec(text)
  if (atx !== null && atx[1] !== undefined && atx[1] !== "") return clip(atx[1])
  const bold = BOLD_LINE.exec(text)
  if (bold !== null && bold[2] !== undefined) return clip(`${bold[1] ?? ""}${bold[2]}`)
  return null
}

/** The heading that line `index` of `lines` is (ATX, bold-only, or underlined by the next line), else null. */
export const headingAt = (lines: ReadonlyArray<string>, index: number): string | null => {
  const line = lines[index]
  if (line === undefined || isDecoration(line)) return null
  const inline = inlineHeading(line)
  if (inline !== null) return inline
  const next = lines[index + 1]
  const text = normalizeInline(line)
  return next !== undefined && text !== "" && SETEXT_UNDERLINE.test(next) ? clip(text) : null
}

/** The nearest heading at or above line `index` (0-based), or null when none is found. */
export const nearestHeadingAbove = (lines: ReadonlyArray<string>, index: number): string | null => {
  for (let i = Math.min(index, lines.length - 1); i >= 0; i--) {
    const heading = headingAt(lines, i)
    if (heading !== null) return heading
  }
  return null
}
