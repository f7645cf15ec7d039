import { type Section, renderSection } from "./Condense.js"
import { estimateTokens } from "./Tokens.js"

/** A group of sections summarized in one call; `tokens` is `estimateTokens(text)`. */
export interface Part {
  readonly sections: ReadonlyArray<Section>
  readonly text: string
  readonly tokens: number
}

export interface Truncated {
  readonly text: string
  /** Characters of the condensed change left out (0 when everything fit). */
  readonly omittedChars: number
  readonly omittedSections: number
}

const SEPARATOR = "\n\n"
const SEPARATOR_TOKENS = estimateTokens(SEPARATOR)
// A line longer than the budget is cut at sentence ends, then at spaces, then anywhere.
const SENTENCE_END = /(?<=[.!?;:])\s+/
const SPACE = /(?<= )/

const hardCut = (text: string, budget: number): Array<string> => {
  const pieces: Array<string> = []
  let rest = text
  while (rest !== "") {
    let size = Math.min(rest.length, Math.max(1, budget * 2))
    while (size > 1 && estimateTokens(rest.slice(0, size)) > budget) size = Math.floor(size * 0.8)
    pieces.push(rest.slice(0, size))
    rest = rest.slice(size)
  }
  return pieces
}

/** Splits `text` into pieces each within `budget`, at the coarsest boundary that works. */
const cut = (text: string, budget: number, boundaries: ReadonlyArray<RegExp>): Array<string> => {
  if (estimateTokens(text) <= budget) return [text]
  const [boundary, ...finer] = boundaries
  if (boundary === undefined) return hardCut(text, budget)
  const pieces: Array<string> = []
  let current = ""
  for (const unit of text.split(boundary).flatMap((unit) => cut(unit, budget, finer))) {
    const joined = current === "" ? unit : `${current}${boundary === SPACE ? "" : " "}${unit}`
    if (current !== "" && estimateTokens(joined) > budget) {
      pieces.push(current)
      current = unit
    } else current = joined
  }
  if (current !== "") pieces.push(current)
  return pieces
}

/** A line too long for the budget becomes several lines; later ones keep its marker and say they go on. */
const splitLine = (line: string, budget: number): Array<string> => {
  if (estimateTokens(line) <= budget) return [line]
  const marker = /^[-+~] /.test(line) ? line.slice(0, 2) : ""
  const continued = `${marker}… `
  const pieces = cut(line.slice(marker.length), budget - estimateTokens(continued), [SENTENCE_END, SPACE])
  return pieces.map((piece, index) => `${index === 0 ? marker : continued}${piece}`)
}

/** A section within `budget`, or several with the same heading, cut between lines (then inside lines). */
const fitSection = (section: Section, budget: number): Array<Section> => {
  if (estimateTokens(renderSection(section)) <= budget) return [section]
  const headingTokens = section.heading === null ? 0 : estimateTokens(`## ${section.heading}\n`)
  // A heading that would crowd out the text is dropped from the pieces rather than loop forever.
  const heading = headingTokens * 2 <= budget ? section.heading : null
  const room = budget - (heading === null ? 0 : headingTokens)
  const sections: Array<Section> = []
  let lines: Array<string> = []
  let tokens = 0
  for (const line of section.text.split("\n").flatMap((line) => splitLine(line, room))) {
    const lineTokens = estimateTokens(line) + 1
    if (lines.length > 0 && tokens + lineTokens > room) {
      sections.push({ heading, text: lines.join("\n") })
      lines = []
      tokens = 0
    }
    lines.push(line)
    tokens += lineTokens
  }
  if (lines.length > 0) sections.push({ heading, text: lines.join("\n") })
  return sections
}

const part = (sections: ReadonlyArray<Section>): Part => {
  const text = sections.map(renderSection).join(SEPARATOR)
  return { sections, text, tokens: estimateTokens(text) }
}

/** A piece of a section, cut to fit the budget, and the index of the section it comes from. */
interface Piece {
  readonly section: Section
  readonly source: number
}

const piecesOf = (sections: ReadonlyArray<Section>, budget: number): Array<Piece> =>
  sections.flatMap((section, source) => fitSection(section, budget).map((piece) => ({ section: piece, source })))

/** Pieces grouped in order, each group as large as fits in `budget`. */
const groups = (pieces: ReadonlyArray<Piece>, budget: number): Array<Array<Piece>> => {
  const result: Array<Array<Piece>> = []
  let current: Array<Piece> = []
  let tokens = 0
  for (const piece of pieces) {
    // Estimates of pieces add up to at least the estimate of their concatenation, so this is safe.
    const pieceTokens = estimateTokens(renderSection(piece.section))
    const added = current.length === 0 ? pieceTokens : tokens + SEPARATOR_TOKENS + pieceTokens
    if (current.length > 0 && added > budget) {
      result.push(current)
      current = [piece]
      tokens = pieceTokens
    } else {
      current.push(piece)
      tokens = added
    }
  }
  if (current.length > 0) result.push(current)
  return result
}

const greedy = (sections: ReadonlyArray<Section>, budget: number): Array<Part> =>
  groups(piecesOf(sections, budget), budget).map((group) => part(group.map((piece) => piece.section)))

/**
 * Groups sections, in order, into as few parts as fit: each part's text (sections rendered and
 * joined as `render` does) stays within `budgetTokens`. A section too large on its own is cut
 * between its lines, and a line too large at sentence ends, so no text is lost. Parts are then
 * evened out when the same number of smaller parts fits, so no part is a small remainder.
 */
export const plan = (sections: ReadonlyArray<Section>, budgetTokens: number): ReadonlyArray<Part> => {
  const budget = Math.max(1, Math.floor(budgetTokens))
  const parts = greedy(sections, budget)
  if (parts.length < 2) return parts
  const total = parts.reduce((sum, p) => sum + p.tokens, 0)
  for (const slack of [1.05, 1.15, 1.3]) {
    const even = greedy(sections, Math.min(budget, Math.ceil((total / parts.length) * slack)))
    if (even.length === parts.length) return even
  }
  return parts
}

/** The notice that ends a truncated change, so the model (and the reader) knows text is missing. */
export const truncationNotice = (omittedChars: number, omittedSections: number): string =>
  `[… the change is too long to show whole: ${omittedChars} more characters${omittedSections > 0 ? ` in ${omittedSections} more sections` : ""} were left out]`

// Room kept for the notice itself.
const NOTICE_TOKENS = estimateTokens(truncationNotice(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) + SEPARATOR_TOKENS

/** The first sections of the change that fit in `budgetTokens`, ending with a visible notice when some were left out. */
export const truncate = (sections: ReadonlyArray<Section>, budgetTokens: number): Truncated => {
  const whole = sections.map(renderSection).join(SEPARATOR)
  if (estimateTokens(whole) <= budgetTokens) return { text: whole, omittedChars: 0, omittedSections: 0 }
  const budget = Math.max(1, Math.floor(budgetTokens) - NOTICE_TOKENS)
  const kept: Array<string> = []
  let tokens = 0
  let lastStarted = -1
  for (const [index, section] of sections.entries()) {
    const pieces = fitSection(section, budget).map(renderSection)
    let full = true
    for (const piece of pieces) {
      const added = estimateTokens(piece) + (kept.length === 0 ? 0 : SEPARATOR_TOKENS)
      if (tokens + added > budget) {
        full = false
        break
      }
      kept.push(piece)
      tokens += added
      lastStarted = index
    }
    if (!full) break
  }
  const text = kept.join(SEPARATOR)
  // Counted on the condensed text as a whole, so the rest of a section cut in two counts too.
  const omittedChars = Math.max(0, whole.length - text.length)
  const omittedSections = sections.length - 1 - lastStarted
  const notice = truncationNotice(omittedChars, omittedSections)
  return { text: text === "" ? notice : `${text}${SEPARATOR}${notice}`, omittedChars, omittedSections }
}

/**
 * `plan` with at most `maxParts` parts, so that one summary cannot take more than its share of
 * the upstream limit: past it, the first `maxParts` full parts, the last one ending with the
 * notice `truncate` writes.
 */
export const planWithin = (sections: ReadonlyArray<Section>, budgetTokens: number, maxParts: number): ReadonlyArray<Part> => {
  const parts = plan(sections, budgetTokens)
  if (parts.length <= maxParts) return parts
  const budget = Math.max(1, Math.floor(budgetTokens) - NOTICE_TOKENS)
  const kept = groups(piecesOf(sections, budget), budget).slice(0, Math.max(1, maxParts))
  const keptText = kept.map((group) => part(group.map((piece) => piece.section)).text).join(SEPARATOR)
  const whole = sections.map(renderSection).join(SEPARATOR)
  const lastStarted = kept.at(-1)!.at(-1)!.source
  const notice: Section = { heading: null, text: truncationNotice(Math.max(0, whole.length - keptText.length), sections.length - 1 - lastStarted) }
  return kept.map((group, index) => part([...group.map((piece) => piece.section), ...(index === kept.length - 1 ? [notice] : [])]))
}
