import { diffWords } from "diff"
import type { Change, Hunk } from "./Change.js"
import { headingAt } from "./Heading.js"
import { comparableLine } from "./Normalize.js"

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
}

/** How the condensed text marks changes; the prompt explains it to the model in these words. */
export const NOTATION = [
  "`## <heading>` names the section where the changes below it are.",
  "`- <text>` is text that was removed; `+ <text>` is text that was added.",
  "`~ <text>` is a paragraph changed in place: `[-old words-]` were removed, `{+new words+}` were added, `…` stands for unchanged text left out.",
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

const segmentsOf = (before: string, after: string): Array<Segment> => {
  const segments: Array<Segment> = []
  for (const part of diffWords(before, after)) {
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

const wordBounds = (text: string): Array<{ readonly start: number; readonly end: number }> =>
  Array.from(text.matchAll(/\S+/g), (match) => ({ start: match.index, end: match.index + match[0].length }))

const windowed = (text: string, keepHead: boolean, keepTail: boolean, words: number): string => {
  const bounds = wordBounds(text)
  const kept = (keepHead ? words : 0) + (keepTail ? words : 0)
  if (bounds.length <= kept) return text
  const head = keepHead ? text.slice(0, bounds[words - 1]!.end) : ""
  const tail = keepTail ? text.slice(bounds[bounds.length - words]!.start) : ""
  return `${head}${keepHead ? " " : ""}…${keepTail ? " " : ""}${tail}`
}

/**
 * One line with word-level marks: `[-removed-]{+added+}`, and about `words` unchanged words on
 * each side of a change; longer unchanged stretches become `…`.
 */
export const wordMarks = (before: string, after: string, contextWords: number = DEFAULT_CONTEXT_WORDS): string => {
  const words = Math.max(1, contextWords)
  const segments = segmentsOf(before, after)
  return segments
    .map((segment, index) => {
      if ("equal" in segment) return windowed(segment.equal, index > 0, index < segments.length - 1, words)
      return `${segment.removed === "" ? "" : `[-${segment.removed}-]`}${segment.added === "" ? "" : `{+${segment.added}+}`}`
    })
    .join("")
}

// ---- pairing removed lines with the added lines that replace them ------------------------

const wordBag = (text: string): Map<string, number> => {
  const bag = new Map<string, number>()
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) bag.set(word, (bag.get(word) ?? 0) + 1)
  return bag
}

const bagSize = (bag: Map<string, number>): number => {
  let size = 0
  for (const count of bag.values()) size += count
  return size
}

const similarity = (a: Map<string, number>, sizeA: number, b: Map<string, number>, sizeB: number): number => {
  if (sizeA + sizeB === 0 || (2 * Math.min(sizeA, sizeB)) / (sizeA + sizeB) < MIN_SIMILARITY) return 0
  let shared = 0
  for (const [word, count] of a) shared += Math.min(count, b.get(word) ?? 0)
  return (2 * shared) / (sizeA + sizeB)
}

/** A removed or added line of the change, normalized; blank and decoration lines are not slots. */
interface Slot {
  readonly kind: "removed" | "added"
  readonly key: string
  readonly heading: string | null
}

interface Pairing {
  /** Slots equal to another once normalized (whitespace churn, or a paragraph moved unchanged). */
  readonly dropped: ReadonlySet<number>
  /** Slot index to the slot index it was paired with (an edited paragraph), both ways. */
  readonly partner: ReadonlyMap<number, number>
}

/**
 * Pairs removed with added lines across the whole change, in any order, so that a paragraph
 * edited (or moved and edited) shows as one line with word marks: first lines equal once
 * normalized, then the most similar remaining ones, best first, nearest first on ties.
 */
const pairSlots = (slots: ReadonlyArray<Slot>): Pairing => {
  const dropped = new Set<number>()
  const partner = new Map<number, number>()
  const removedByKey = new Map<string, Array<number>>()
  slots.forEach((slot, index) => {
    if (slot.kind !== "removed") return
    const same = removedByKey.get(slot.key)
    if (same === undefined) removedByKey.set(slot.key, [index])
    else same.push(index)
  })
  slots.forEach((slot, index) => {
    const twin = slot.kind === "added" ? removedByKey.get(slot.key)?.shift() : undefined
    if (twin !== undefined) {
      dropped.add(twin)
      dropped.add(index)
    }
  })
  const open = (kind: Slot["kind"]) => slots.flatMap((slot, index) => (slot.kind === kind && !dropped.has(index) ? [index] : []))
  const removed = open("removed")
  const added = open("added")
  if (removed.length * added.length > MAX_PAIRING_CELLS) return { dropped, partner }
  const bags = new Map(slots.map((slot, index) => [index, wordBag(slot.key)] as const))
  const sizes = new Map([...bags].map(([index, bag]) => [index, bagSize(bag)] as const))
  const candidates: Array<{ readonly r: number; readonly a: number; readonly sim: number }> = []
  for (const r of removed) {
    for (const a of added) {
      const sim = similarity(bags.get(r)!, sizes.get(r)!, bags.get(a)!, sizes.get(a)!)
      if (sim >= MIN_SIMILARITY) candidates.push({ r, a, sim })
    }
  }
  // Slot indices follow the change's order, so their distance says how near two lines are.
  candidates.sort((x, y) => y.sim - x.sim || Math.abs(x.r - x.a) - Math.abs(y.r - y.a))
  for (const { a, r } of candidates) {
    if (partner.has(r) || partner.has(a)) continue
    partner.set(r, a)
    partner.set(a, r)
  }
  return { dropped, partner }
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

const builder = (): Builder => {
  const sections: Array<{ heading: string | null; lines: Array<string> }> = []
  let current: string | null = null
  return {
    moveTo: (heading) => {
      current = heading
    },
    add: (text) => {
      const last = sections[sections.length - 1]
      if (last !== undefined && last.heading === current) last.lines.push(text)
      else sections.push({ heading: current, lines: [text] })
    },
    sections: () => sections.map(({ heading, lines }) => ({ heading, text: lines.join("\n") }))
  }
}

/** The heading each hunk line is, read on its own side (setext headings need the next line). */
const headingsOf = (hunk: Hunk): Array<string | null> => {
  const headings: Array<string | null> = hunk.lines.map(() => null)
  for (const side of ["removed", "added"] as const) {
    const indices = hunk.lines.flatMap((line, index) => (line.kind === side || line.kind === "context" ? [index] : []))
    const texts = indices.map((index) => hunk.lines[index]!.text)
    indices.forEach((lineIndex, position) => {
      headings[lineIndex] = headingAt(texts, position) ?? headings[lineIndex] ?? null
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
  for (const hunk of change.hunks) {
    events.push({ type: "hunk", location: hunk.location })
    const headings = headingsOf(hunk)
    hunk.lines.forEach((line, index) => {
      const heading = headings[index] ?? null
      if (line.kind === "context") {
        if (heading !== null) events.push({ type: "heading", heading })
        return
      }
      const key = comparableLine(line.text)
      if (key === "") return
      events.push({ type: "slot", slot: slots.length })
      slots.push({ kind: line.kind, key, heading })
    })
  }
  return { events, slots }
}

/**
 * What the model sees of a change: per section, only the lines that changed (normalized), long
 * edited paragraphs as word-level marks, whole added or removed paragraphs in full (up to a cap),
 * whitespace-only and invisible-character churn and paragraphs moved unchanged left out. Sections
 * follow the document's headings.
 */
export const condense = (change: Change, options: CondenseOptions = {}): ReadonlyArray<Section> => {
  const contextWords = Math.max(1, options.contextWords ?? DEFAULT_CONTEXT_WORDS)
  const maxChars = options.maxParagraphChars ?? DEFAULT_MAX_PARAGRAPH_CHARS
  const { events, slots } = walk(change)
  const { dropped, partner } = pairSlots(slots)
  const out = builder()
  const renderPair = (before: string, after: string): string => {
    const whole = `- ${capped(before, maxChars)}\n+ ${capped(after, maxChars)}`
    const marked = `~ ${wordMarks(before, after, contextWords)}`
    return marked.length <= whole.length * INLINE_RATIO ? marked : whole
  }
  for (const event of events) {
    if (event.type === "hunk") out.moveTo(event.location)
    else if (event.type === "heading") out.moveTo(event.heading)
    else {
      const slot = slots[event.slot]!
      const other = partner.get(event.slot)
      // An edited pair is shown where its new version stands; churn is left out, its heading kept.
      if (slot.kind === "removed" && (other !== undefined || dropped.has(event.slot))) continue
      const heading = slot.heading ?? (other === undefined ? null : slots[other]!.heading)
      if (heading !== null) out.moveTo(heading)
      if (dropped.has(event.slot)) continue
      if (other !== undefined) out.add(renderPair(slots[other]!.key, slot.key))
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
