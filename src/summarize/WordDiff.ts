import { type ChangeObject, wordDiff } from "diff"

/**
 * The word characters of the `diff` library's `diffWords` (its `extendedWordChars`): ASCII letters,
 * digits and `_`, the soft hyphen, Latin-1 and Latin Extended letters, spacing modifiers except
 * the accents U+02C7 and U+02D8 to U+02DD, Latin Extended Additional.
 */
const isWordChar = (code: number): boolean =>
  code < 0x80
    ? (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39) || code === 0x5f
    : code === 0xad ||
      (code >= 0xc0 && code <= 0x2ff && code !== 0xd7 && code !== 0xf7 && code !== 0x2c7 && (code < 0x2d8 || code > 0x2dd)) ||
      (code >= 0x1e00 && code <= 0x1eff)

/** A line's tokens: their texts, and where each starts and ends. */
interface Tokens {
  readonly texts: Array<string>
  readonly starts: Array<number>
  readonly ends: Array<number>
}

/**
 * The library's tokens without their spaces: each run of word characters, and each other
 * character (code point) but the space, the only whitespace a normalized line has.
 */
const tokensOf = (text: string): Tokens => {
  const texts: Array<string> = []
  const starts: Array<number> = []
  const ends: Array<number> = []
  for (let start = 0; start < text.length;) {
    const code = text.codePointAt(start)!
    let end = start + (code > 0xffff ? 2 : 1)
    if (code === 0x20) {
      start = end
      continue
    }
    // Word characters are all below U+FFFF: a UTF-16 unit is enough to test the next one.
    if (isWordChar(code)) while (end < text.length && isWordChar(text.charCodeAt(end))) end++
    texts.push(text.slice(start, end))
    starts.push(start)
    ends.push(end)
    start = end
  }
  return { texts, starts, ends }
}

/** A run of kept, added or removed tokens, linked to the run before it (the library's own shape). */
interface Component {
  readonly count: number
  readonly added: boolean
  readonly removed: boolean
  readonly previous: Component | undefined
}

interface Path {
  oldPos: number
  last: Component | undefined
}

/**
 * The library's Myers diff (`Diff.diffWithOptionsObj`) step for step, on bare tokens: the same
 * choice between an insertion and a removal at every diagonal, the same pruning, hence the same
 * edit script whenever several are equally short. Null once `maxSteps` diagonals and token
 * comparisons were spent: the search costs (tokens x edits), quadratic for a reordered line.
 */
const editScript = (before: ReadonlyArray<string>, after: ReadonlyArray<string>, maxSteps: number): Array<Component> | null => {
  let steps = 0
  const oldLen = before.length
  const newLen = after.length
  // Diagonals run from -newLen to oldLen; the neighbours of the outermost ones are read too.
  const offset = newLen + 2
  const best: Array<Path | undefined> = new Array(oldLen + newLen + 5)
  const slide = (path: Path, diagonal: number): number => {
    let oldPos = path.oldPos
    let newPos = oldPos - diagonal
    const start = oldPos
    while (newPos + 1 < newLen && oldPos + 1 < oldLen && before[oldPos + 1] === after[newPos + 1]) {
      newPos++
      oldPos++
    }
    steps += oldPos - start + 1
    if (oldPos > start) path.last = { count: oldPos - start, added: false, removed: false, previous: path.last }
    path.oldPos = oldPos
    return newPos
  }
  const extend = (path: Path, added: boolean, oldPosInc: number): Path => {
    const last = path.last
    const removed = !added
    return last !== undefined && last.added === added && last.removed === removed
      ? { oldPos: path.oldPos + oldPosInc, last: { count: last.count + 1, added, removed, previous: last.previous } }
      : { oldPos: path.oldPos + oldPosInc, last: { count: 1, added, removed, previous: last } }
  }
  const components = (last: Component | undefined): Array<Component> => {
    const list: Array<Component> = []
    for (let component = last; component !== undefined; component = component.previous) list.push(component)
    return list.reverse()
  }
  const start: Path = { oldPos: -1, last: undefined }
  const startNewPos = slide(start, 0)
  if (start.oldPos + 1 >= oldLen && startNewPos + 1 >= newLen) return components(start.last)
  best[offset] = start
  let minDiagonal = -Infinity
  let maxDiagonal = Infinity
  // Some path reaches the end within oldLen + newLen edits; the bound (the library's too) only
  // guarantees that a request can never spin here.
  for (let editLength = 1; editLength <= oldLen + newLen; editLength++) {
    for (let diagonal = Math.max(minDiagonal, -editLength); diagonal <= Math.min(maxDiagonal, editLength); diagonal += 2) {
      const removePath = best[offset + diagonal - 1]
      const addPath = best[offset + diagonal + 1]
      if (removePath !== undefined) best[offset + diagonal - 1] = undefined
      const addNewPos = addPath === undefined ? -1 : addPath.oldPos - diagonal
      const canAdd = addPath !== undefined && 0 <= addNewPos && addNewPos < newLen
      const canRemove = removePath !== undefined && removePath.oldPos + 1 < oldLen
      if (!canAdd && !canRemove) {
        best[offset + diagonal] = undefined
        continue
      }
      const path = !canRemove || (canAdd && removePath.oldPos < addPath.oldPos) ? extend(addPath!, true, 0) : extend(removePath, false, 1)
      const newPos = slide(path, diagonal)
      if (path.oldPos + 1 >= oldLen && newPos + 1 >= newLen) return components(path.last)
      if (steps > maxSteps) return null
      best[offset + diagonal] = path
      if (path.oldPos + 1 >= oldLen) maxDiagonal = Math.min(maxDiagonal, diagonal - 1)
      if (newPos + 1 >= newLen) minDiagonal = Math.max(minDiagonal, diagonal + 1)
    }
  }
  const everything: Array<Component> = []
  if (oldLen > 0) everything.push({ count: oldLen, added: false, removed: true, previous: undefined })
  if (newLen > 0) everything.push({ count: newLen, added: true, removed: false, previous: undefined })
  return everything
}

export interface WordDiffBounds {
  /** Tokens a line may have; a longer line is not diffed by words. */
  readonly maxTokens?: number
  /** Search steps (diagonals visited and tokens compared) before giving up. */
  readonly maxSteps?: number
}

// About 60 KB of prose per line; a word diff there still reads well when few words changed.
const MAX_TOKENS = 10_000
// Tens of milliseconds: a lightly edited paragraph of MAX_TOKENS needs a small fraction of it,
// while a reordered one would need (tokens x edits), minutes and gigabytes.
const MAX_STEPS = 2_000_000

/**
 * `diffNormalizedWords` within bounds: null when a line has more than `maxTokens` tokens or the
 * search needs more than `maxSteps` steps, so that the caller shows both lines whole instead.
 */
export const boundedWordDiff = (before: string, after: string, bounds: WordDiffBounds = {}): Array<ChangeObject<string>> | null => {
  const maxTokens = bounds.maxTokens ?? MAX_TOKENS
  const old = tokensOf(before)
  const now = tokensOf(after)
  if (old.texts.length > maxTokens || now.texts.length > maxTokens) return null
  // The library's token is the word with the spaces on either side; a run of tokens joins to the
  // line from the first one's leading space to the last one's trailing space.
  const slice = (text: string, tokens: Tokens, from: number, count: number): string => {
    const start = tokens.starts[from]!
    const end = tokens.ends[from + count - 1]!
    return text.slice(start > 0 && text[start - 1] === " " ? start - 1 : start, text[end] === " " ? end + 1 : end)
  }
  const script = editScript(old.texts, now.texts, bounds.maxSteps ?? MAX_STEPS)
  if (script === null) return null
  let oldPos = 0
  let newPos = 0
  const changes = script.map(({ added, count, removed }): ChangeObject<string> => {
    if (removed) {
      const value = slice(before, old, oldPos, count)
      oldPos += count
      return { value, added, removed, count }
    }
    const value = slice(after, now, newPos, count)
    newPos += count
    if (!added) oldPos += count
    return { value, added, removed, count }
  })
  // The library's own clean-up of the spaces between changes.
  return wordDiff.postProcess(changes, {})
}

/**
 * `diffWords(before, after)` of the `diff` library, for lines as `normalizeInline` returns them
 * (single spaces, trimmed), several times faster: tokens are found without a Unicode regex and
 * compared without their spaces (the library trims both at every comparison), the search keeps
 * its paths in an array rather than under negative indices, and values are cut from the lines
 * instead of joined from token strings. Unbounded: requests go through `boundedWordDiff`.
 */
export const diffNormalizedWords = (before: string, after: string): Array<ChangeObject<string>> =>
  boundedWordDiff(before, after, { maxTokens: Infinity, maxSteps: Infinity })!
