import type { Change, Hunk } from "./Change.js"
import { headingOfLine, type ReadLine } from "./Heading.js"
import { isDecoration, normalizeInline } from "./Normalize.js"
import { boundedWordDiff, type WordDiffBounds } from "./WordDiff.js"
import { forEachRun, isLetterOrNumber, isWhitespace } from "./Words.js"

/** A run of changes under one heading (a location hint; null when none is known). */
export interface Section {
  readonly heading: string | null
  readonly text: string
}

export interface CondenseOptions {
  /** Words of unchanged text kept on each side of a word-level change. */
  readonly contextWords?: number
  /** A whole added or removed paragraph longer than this is cut with a visible notice. */
  readonly maxParagraphChars?: number
  /** Past these bounds an edited paragraph is shown as its old and new lines, without word marks. */
  readonly wordDiff?: WordDiffBounds
}

/** How the condensed text marks changes; the prompt explains it to the model in these words. */
export const NOTATION = [
  "`## <heading>` names the section where the changes below it are.",
  "`- <text>` is text that was removed; `+ <text>` is text that was added.",
  "`~ <text>` is a paragraph changed in place: `[-old words-]` were removed, `{+new words+}` were added, `…` stands for unchanged text left out.",
  "`> (moved …) <text>` is text that moved unchanged; the parentheses say from where.",
  "`(the same change on N lines)` after a change means it was made, identically, N times; it is shown once.",
  "`[… N more characters]` means the rest of a long paragraph was left out."
].join("\n")

const DEFAULT_CONTEXT_WORDS = 20
const DEFAULT_MAX_PARAGRAPH_CHARS = 4000
// Word marks are used when they are clearly shorter than showing both versions whole.
const INLINE_RATIO = 0.8
// Lines sharing at least this much of their words (Dice coefficient) are one paragraph edited.
const MIN_SIMILARITY = 0.5
// Pairing is quadratic; past this many candidate pairs only lines equal once normalized are paired.
const MAX_PAIRING_CELLS = 2_000_000

// ---- word-level marks ---------------------------------------------------------------------

type Segment = { readonly equal: string } | { readonly removed: string; readonly added: string }

const segmentsOf = (before: string, after: string, bounds: WordDiffBounds): Array<Segment> | null => {
  const parts = boundedWordDiff(before, after, bounds)
  if (parts === null) return null
  const segments: Array<Segment> = []
  for (const part of parts) {
    if (!part.added && !part.removed) {
      segments.push({ equal: part.value })
      continue
    }
    const removed = part.removed ? part.value : ""
    const added = part.added ? part.value : ""
    const last = segments.at(-1)
    const previous = segments.at(-2)
    if (last !== undefined && !("equal" in last)) {
      segments.splice(-1, 1, { removed: last.removed + removed, added: last.added + added })
    } else if (last !== undefined && last.equal.trim() === "" && previous !== undefined && !("equal" in previous)) {
      // Two changes separated only by a space read better as one.
      segments.splice(-2, 2, { removed: previous.removed + last.equal + removed, added: previous.added + last.equal + added })
    } else segments.push({ removed, added })
  }
  return segments
}

// Words here are runs of non-whitespace (`\S+`); unchanged stretches can be long, so only the
// words kept are looked at, from either end.

/** Where the `n`-th word from the start of `text` ends, or null when there are fewer words. */
const afterWord = (text: string, n: number): number | null => {
  let count = 0
  for (let index = 0; index < text.length; index++) {
    const endsWord = !isWhitespace(text.charCodeAt(index)) && (index + 1 === text.length || isWhitespace(text.charCodeAt(index + 1)))
    if (endsWord && ++count === n) return index + 1
  }
  return null
}

/** Where the `n`-th word from the end of `text` starts, or null when there are fewer words. */
const beforeWord = (text: string, n: number): number | null => {
  let count = 0
  for (let index = text.length - 1; index >= 0; index--) {
    const startsWord = !isWhitespace(text.charCodeAt(index)) && (index === 0 || isWhitespace(text.charCodeAt(index - 1)))
    if (startsWord && ++count === n) return index
  }
  return null
}

const windowed = (text: string, keepHead: boolean, keepTail: boolean, words: number): string => {
  const kept = (keepHead ? words : 0) + (keepTail ? words : 0)
  if (afterWord(text, kept + 1) === null) return text
  const head = keepHead ? text.slice(0, afterWord(text, words)!) : ""
  const tail = keepTail ? text.slice(beforeWord(text, words)!) : ""
  return `${head}${keepHead ? " " : ""}…${keepTail ? " " : ""}${tail}`
}

/**
 * One line with word-level marks: `[-removed-]{+added+}`, and about `words` unchanged words on
 * each side of a change; longer unchanged stretches become `…`. Both lines are normalized
 * (`normalizeInline`), as the slots of a change are.
 */
export const wordMarks = (before: string, after: string, contextWords: number = DEFAULT_CONTEXT_WORDS): string =>
  boundedWordMarks(before, after, contextWords, { maxTokens: Infinity, maxSteps: Infinity })!

/** `wordMarks` within the word diff's bounds; null past them. */
const boundedWordMarks = (before: string, after: string, contextWords: number, bounds: WordDiffBounds): string | null => {
  const words = Math.max(1, contextWords)
  const segments = segmentsOf(before, after, bounds)
  if (segments === null) return null
  return segments
    .map((segment, index) => {
      if ("equal" in segment) return windowed(segment.equal, index > 0, index < segments.length - 1, words)
      return `${segment.removed === "" ? "" : `[-${segment.removed}-]`}${segment.added === "" ? "" : `{+${segment.added}+}`}`
    })
    .join("")
}

// ---- pairing removed lines with the added lines that replace them ------------------------

/** A line's words (`[\p{L}\p{N}]+` once lower-cased) as sorted ids, repeats kept: a multiset cheap to intersect. */
const wordIds = (text: string, idOf: Map<string, number>): Int32Array => {
  const lower = text.toLowerCase()
  const ids: Array<number> = []
  forEachRun(lower, isLetterOrNumber, (start, end) => {
    const word = lower.slice(start, end)
    let id = idOf.get(word)
    if (id === undefined) {
      id = idOf.size
      idOf.set(word, id)
    }
    ids.push(id)
  })
  return Int32Array.from(ids).sort()
}

/** The Dice coefficient of two word multisets, or 0 as soon as it cannot reach MIN_SIMILARITY. */
const similarity = (a: Int32Array, b: Int32Array): number => {
  const total = a.length + b.length
  if (total === 0 || (2 * Math.min(a.length, b.length)) / total < MIN_SIMILARITY) return 0
  const needed = (MIN_SIMILARITY * total) / 2
  let shared = 0
  for (let i = 0, j = 0; i < a.length && j < b.length;) {
    if (a[i] === b[j]) {
      shared++
      i++
      j++
      continue
    }
    if (a[i]! < b[j]!) i++
    else j++
    // Most pairs are unrelated lines: stop once the words left cannot share enough.
    if (shared + Math.min(a.length - i, b.length - j) < needed) return 0
  }
  return (2 * shared) / total
}

/** A removed or added line of the change, normalized; blank and decoration lines are not slots. */
interface Slot {
  readonly kind: "removed" | "added"
  readonly key: string
  /** The heading this line is, else null. */
  readonly heading: string | null
  /** The section the line lies in on its own side (for a heading, the one before it). */
  readonly section: string | null
  /** Lines of one gap lie between the same two unchanged lines (or hunk edges). */
  readonly gap: number
}

interface Pairing {
  /** Slots equal to another once normalized, in place: whitespace churn, re-wrapping, blank-line churn. */
  readonly dropped: ReadonlySet<number>
  /** An added slot to the removed one it is a moved copy of (same text, another place or order). */
  readonly movedFrom: ReadonlyMap<number, number>
  /** Removed slots that reappear elsewhere (shown once, where they now stand). */
  readonly movedAway: ReadonlySet<number>
  /** Slot index to the slot index it was paired with (an edited paragraph), both ways. */
  readonly partner: ReadonlyMap<number, number>
}

/** Indices into `values` of one longest strictly increasing subsequence (patience sorting). */
const longestIncreasing = (values: ReadonlyArray<number>): Set<number> => {
  const tails: Array<number> = []
  const previous: Array<number> = new Array(values.length).fill(-1)
  values.forEach((value, index) => {
    let low = 0
    let high = tails.length
    while (low < high) {
      const middle = (low + high) >> 1
      if (values[tails[middle]!]! < value) low = middle + 1
      else high = middle
    }
    if (low > 0) previous[index] = tails[low - 1]!
    tails[low] = index
  })
  const kept = new Set<number>()
  for (let index = tails.at(-1) ?? -1; index >= 0; index = previous[index]!) kept.add(index)
  return kept
}

/**
 * Removed and added lines equal once normalized, each removed one with the first added one left.
 * A pair is churn (dropped) only when it stays in its gap and section and keeps its order against
 * the other such pairs there; otherwise the text moved, which can change what it means.
 */
const matchTwins = (slots: ReadonlyArray<Slot>): Pick<Pairing, "dropped" | "movedFrom" | "movedAway"> => {
  const dropped = new Set<number>()
  const movedFrom = new Map<number, number>()
  const movedAway = new Set<number>()
  const removedByKey = new Map<string, { readonly indices: Array<number>; next: number }>()
  slots.forEach((slot, index) => {
    if (slot.kind !== "removed") return
    const same = removedByKey.get(slot.key)
    if (same === undefined) removedByKey.set(slot.key, { indices: [index], next: 0 })
    else same.indices.push(index)
  })
  const inGap = new Map<number, Array<readonly [removed: number, added: number]>>()
  slots.forEach((slot, index) => {
    const same = slot.kind === "added" ? removedByKey.get(slot.key) : undefined
    if (same === undefined || same.next >= same.indices.length) return
    const twin = same.indices[same.next++]!
    const before = slots[twin]!
    if (before.gap === slot.gap && before.section === slot.section) {
      const pairs = inGap.get(slot.gap)
      if (pairs === undefined) inGap.set(slot.gap, [[twin, index]])
      else pairs.push([twin, index])
    } else {
      movedFrom.set(index, twin)
      movedAway.add(twin)
    }
  })
  for (const pairs of inGap.values()) {
    // Pairs come in the order of their added lines; those whose removed lines also increase keep their order.
    const inOrder = longestIncreasing(pairs.map(([removed]) => removed))
    pairs.forEach(([removed, added], index) => {
      if (inOrder.has(index)) {
        dropped.add(removed)
        dropped.add(added)
      } else {
        movedFrom.set(added, removed)
        movedAway.add(removed)
      }
    })
  }
  return { dropped, movedFrom, movedAway }
}

/**
 * Pairs removed with added lines across the whole change, in any order, so that a paragraph
 * edited (or moved and edited) shows as one line with word marks: first lines equal once
 * normalized, then the most similar remaining ones, best first, nearest first on ties.
 */
const pairSlots = (slots: ReadonlyArray<Slot>): Pairing => {
  const { dropped, movedAway, movedFrom } = matchTwins(slots)
  const partner = new Map<number, number>()
  const open = (kind: Slot["kind"]) =>
    slots.flatMap((slot, index) => (slot.kind === kind && !dropped.has(index) && !movedFrom.has(index) && !movedAway.has(index) ? [index] : []))
  const removed = open("removed")
  const added = open("added")
  if (removed.length * added.length > MAX_PAIRING_CELLS) return { dropped, partner, movedFrom, movedAway }
  const idOf = new Map<string, number>()
  const removedWords = removed.map((index) => wordIds(slots[index]!.key, idOf))
  const addedWords = added.map((index) => wordIds(slots[index]!.key, idOf))
  const candidates: Array<{ readonly r: number; readonly a: number; readonly sim: number }> = []
  for (let i = 0; i < removed.length; i++) {
    for (let j = 0; j < added.length; j++) {
      const sim = similarity(removedWords[i]!, addedWords[j]!)
      if (sim >= MIN_SIMILARITY) candidates.push({ r: removed[i]!, a: added[j]!, sim })
    }
  }
  // Slot indices follow the change's order, so their distance says how near two lines are.
  candidates.sort((x, y) => y.sim - x.sim || Math.abs(x.r - x.a) - Math.abs(y.r - y.a))
  for (const { a, r } of candidates) {
    if (partner.has(r) || partner.has(a)) continue
    partner.set(r, a)
    partner.set(a, r)
  }
  return { dropped, partner, movedFrom, movedAway }
}

// ---- sections --------------------------------------------------------------------------------

const capped = (text: string, max: number): string => {
  if (text.length <= max) return text
  const space = text.lastIndexOf(" ", max)
  const cut = space > max * 0.8 ? space : max
  return `${text.slice(0, cut)} [… ${text.length - cut} more characters]`
}

interface Builder {
  readonly moveTo: (heading: string | null) => void
  readonly add: (text: string) => void
  readonly sections: () => Array<Section>
}

/** A change shown once for all its identical copies: where it stands, how often and in how many sections it was made. */
interface Repeated {
  readonly lines: Array<string>
  readonly line: number
  count: number
  readonly headings: Set<string | null>
}

/** Sections in order of the walk; a change made identically more than once is shown once, with its count. */
const builder = (): Builder => {
  const sections: Array<{ heading: string | null; lines: Array<string> }> = []
  const seen = new Map<string, Repeated>()
  let current: string | null = null
  return {
    moveTo: (heading) => {
      current = heading
    },
    add: (text) => {
      const repeated = seen.get(text)
      if (repeated !== undefined) {
        repeated.count++
        repeated.headings.add(current)
        return
      }
      let last = sections[sections.length - 1]
      if (last === undefined || last.heading !== current) {
        last = { heading: current, lines: [] }
        sections.push(last)
      }
      seen.set(text, { lines: last.lines, line: last.lines.length, count: 1, headings: new Set([current]) })
      last.lines.push(text)
    },
    sections: () => {
      for (const [text, { count, headings, line, lines }] of seen) {
        if (count > 1) lines[line] = `${text} (the same change on ${count} lines${headings.size > 1 ? `, in ${headings.size} sections` : ""})`
      }
      return sections.map(({ heading, lines }) => ({ heading, text: lines.join("\n") }))
    }
  }
}

/** The heading each hunk line is, read on its own side (setext headings need the next line). */
const headingsOf = (hunk: Hunk, read: ReadonlyArray<ReadLine>): Array<string | null> => {
  const headings: Array<string | null> = hunk.lines.map(() => null)
  for (const side of ["removed", "added"] as const) {
    const indices = hunk.lines.flatMap((line, index) => (line.kind === side || line.kind === "context" ? [index] : []))
    indices.forEach((lineIndex, position) => {
      const next = indices[position + 1]
      const heading = headingOfLine(read[lineIndex]!, next === undefined ? undefined : hunk.lines[next]!.text)
      headings[lineIndex] = heading ?? headings[lineIndex] ?? null
    })
  }
  return headings
}

type Event =
  | { readonly type: "hunk"; readonly location: string | null }
  | { readonly type: "heading"; readonly heading: string }
  | { readonly type: "slot"; readonly slot: number }

/** The change as a walk: hunk starts, headings met in context lines, and removed or added lines. */
const walk = (change: Change): { readonly events: Array<Event>; readonly slots: Array<Slot> } => {
  const events: Array<Event> = []
  const slots: Array<Slot> = []
  let gap = 0
  for (const hunk of change.hunks) {
    events.push({ type: "hunk", location: hunk.location })
    gap++
    // Text above a hunk is unchanged, so both sides start it in the same section.
    const section = { removed: hunk.location, added: hunk.location }
    // Each line is normalized once, for the headings and for the slot keys alike.
    const read = hunk.lines.map((line): ReadLine => ({ normalized: normalizeInline(line.text), decoration: isDecoration(line.text) }))
    const headings = headingsOf(hunk, read)
    hunk.lines.forEach((line, index) => {
      const heading = headings[index] ?? null
      // `comparableLine`: decoration counts as blank.
      const key = read[index]!.decoration ? "" : read[index]!.normalized
      if (line.kind === "context") {
        if (heading !== null) {
          events.push({ type: "heading", heading })
          section.removed = heading
          section.added = heading
        }
        // An unchanged line closes a gap: text that crosses it has moved.
        if (key !== "") gap++
        return
      }
      if (key === "") return
      events.push({ type: "slot", slot: slots.length })
      slots.push({ kind: line.kind, key, heading, section: section[line.kind], gap })
      if (heading !== null) section[line.kind] = heading
    })
  }
  return { events, slots }
}

/** Where a moved line came from, as the text after `> `. */
const moveNote = (from: Slot, to: Slot): string => {
  const quoted = (heading: string | null) => (heading === null ? "the start" : `"${heading}"`)
  if (to.heading !== null) return `(section moved: it followed ${quoted(from.section)}, now it follows ${quoted(to.section)})`
  if (from.section !== to.section) return `(moved from ${from.section === null ? "the start of the document" : `"${from.section}"`})`
  return to.section === null ? "(moved)" : `(moved within "${to.section}")`
}

/**
 * What the model sees of a change: per section, only the lines that changed (normalized), long
 * edited paragraphs as word-level marks, whole added or removed paragraphs in full (up to a cap),
 * paragraphs moved to another section or order marked as moved, whitespace-only and
 * invisible-character churn left out, and a change made identically many times shown once with
 * its count. Sections follow the document's headings.
 */
export const condense = (change: Change, options: CondenseOptions = {}): ReadonlyArray<Section> => {
  const contextWords = Math.max(1, options.contextWords ?? DEFAULT_CONTEXT_WORDS)
  const maxChars = options.maxParagraphChars ?? DEFAULT_MAX_PARAGRAPH_CHARS
  const { events, slots } = walk(change)
  const { dropped, movedAway, movedFrom, partner } = pairSlots(slots)
  const out = builder()
  const renderPair = (before: string, after: string): string => {
    const whole = `- ${capped(before, maxChars)}\n+ ${capped(after, maxChars)}`
    const marks = boundedWordMarks(before, after, contextWords, options.wordDiff ?? {})
    if (marks === null) return whole
    const marked = `~ ${marks}`
    return marked.length <= whole.length * INLINE_RATIO ? marked : whole
  }
  for (const event of events) {
    if (event.type === "hunk") out.moveTo(event.location)
    else if (event.type === "heading") out.moveTo(event.heading)
    else {
      const slot = slots[event.slot]!
      const other = partner.get(event.slot)
      // An edited pair is shown where its new version stands; churn is left out, its heading kept.
      if (slot.kind === "removed" && (other !== undefined || dropped.has(event.slot) || movedAway.has(event.slot))) continue
      const heading = slot.heading ?? (other === undefined ? null : slots[other]!.heading)
      if (heading !== null) out.moveTo(heading)
      if (dropped.has(event.slot)) continue
      const origin = movedFrom.get(event.slot)
      if (origin !== undefined) out.add(`> ${moveNote(slots[origin]!, slot)} ${capped(slot.key, maxChars)}`)
      else if (other !== undefined) out.add(renderPair(slots[other]!.key, slot.key))
      else out.add(`${slot.kind === "removed" ? "-" : "+"} ${capped(slot.key, maxChars)}`)
    }
  }
  return out.sections()
}

/** One section as text: its heading line, then its changes. */
export const renderSection = (section: Section): string =>
  section.heading === null ? section.text : `## ${section.heading}\n${section.text}`

/** The condensed change as one text, sections separated by a blank line. */
export const render = (sections: ReadonlyArray<Section>): string => sections.map(renderSection).join("\n\n")
