import { createTwoFilesPatch, FILE_HEADERS_ONLY, formatPatch } from "diff"
import { Either, Schema } from "effect"
import { inlineHeading, nearestHeadingAbove } from "./Heading.js"
import { normalizeInline } from "./Normalize.js"

/**
 * The text given as a unified diff is not one: the message says where and why. A schema, so that
 * it crosses from the change worker as itself.
 */
export class InvalidDiff extends Schema.TaggedError<InvalidDiff>()("InvalidDiff", { message: Schema.String }) {}

export type LineKind = "context" | "removed" | "added"

export interface DiffLine {
  readonly kind: LineKind
  /** The line without its `' '`/`-`/`+` prefix and without a line terminator. */
  readonly text: string
}

export interface Hunk {
  readonly oldStart: number
  readonly oldLines: number
  readonly newStart: number
  readonly newLines: number
  /**
   * Where the hunk sits, as a hint: the nearest heading above it when the diff was computed here,
   * or, when a diff was given, the function context git prints after `@@` if it looks like one.
   */
  readonly location: string | null
  readonly lines: ReadonlyArray<DiffLine>
}

/** A policy change: the exact diff text a caller gets back, and its hunks. */
export interface Change {
  readonly rawDiff: string
  readonly hunks: ReadonlyArray<Hunk>
}

const CONTEXT_LINES = 3
// The diff library needs minutes for two large, wholly different texts; past this it gives up.
const DIFF_TIMEOUT_MS = 3000
const NO_NEWLINE = "\\ No newline at end of file"
const HUNK_HEADER = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$/

const toLines = (text: string): Array<string> => {
  const lines = text.split("\n")
  // The piece after a final newline is not a line.
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop()
  return lines.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line))
}

interface OpenHunk {
  readonly header: RegExpExecArray
  readonly at: number
  readonly lines: Array<DiffLine>
  oldLeft: number
  newLeft: number
}

// git's `@@` context for Markdown is the last line starting with a letter, cut at 80 characters:
// usually the start of a paragraph. Only a heading-like or short, uncut line is a useful hint.
const GIT_CONTEXT_CUT = 80

const locationHint = (context: string): string | null => {
  const heading = inlineHeading(context)
  if (heading !== null) return heading
  const text = normalizeInline(context)
  return text !== "" && text.length < GIT_CONTEXT_CUT ? text : null
}

const closeHunk = (open: OpenHunk): Hunk => {
  const [, oldStart, oldLines, newStart, newLines, context] = open.header
  return {
    oldStart: Number(oldStart),
    oldLines: oldLines === undefined ? 1 : Number(oldLines),
    newStart: Number(newStart),
    newLines: newLines === undefined ? 1 : Number(newLines),
    location: locationHint(context ?? ""),
    lines: open.lines
  }
}

const KIND_OF_PREFIX: Record<string, LineKind> = { " ": "context", "-": "removed", "+": "added" }

/**
 * Reads hunks from a unified diff (git's, with `diff --git`, `index`, `---`/`+++`, `@@` and
 * `\ No newline at end of file` lines, or any tool's). Lines outside hunks are headers and are
 * skipped; inside a hunk the `@@` counts decide where it ends. Text without a hunk is refused.
 */
const parseHunks = (patch: string): Either.Either<Array<Hunk>, InvalidDiff> => {
  const hunks: Array<Hunk> = []
  let open: OpenHunk | null = null
  const lines = toLines(patch)
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!
    if (open === null) {
      const header = HUNK_HEADER.exec(line)
      if (header !== null) {
        open = { header, at: index + 1, lines: [], oldLeft: 0, newLeft: 0 }
        open.oldLeft = header[2] === undefined ? 1 : Number(header[2])
        open.newLeft = header[4] === undefined ? 1 : Number(header[4])
        if (open.oldLeft === 0 && open.newLeft === 0) {
          return Either.left(new InvalidDiff({ message: `line ${index + 1}: a hunk with no lines` }))
        }
      }
      continue
    }
    if (line.startsWith("\\")) continue
    // Some tools strip the single space of an empty context line.
    const kind = line === "" ? "context" : KIND_OF_PREFIX[line[0]!]
    if (kind === undefined) {
      return Either.left(new InvalidDiff({ message: `line ${index + 1}: unexpected line inside the hunk at line ${open.at}` }))
    }
    if (kind !== "added") open.oldLeft--
    if (kind !== "removed") open.newLeft--
    if (open.oldLeft < 0 || open.newLeft < 0) {
      return Either.left(new InvalidDiff({ message: `line ${index + 1}: more lines than the hunk header at line ${open.at} announces` }))
    }
    open.lines.push({ kind, text: line.slice(1) })
    if (open.oldLeft === 0 && open.newLeft === 0) {
      hunks.push(closeHunk(open))
      open = null
    }
  }
  if (open !== null) {
    return Either.left(new InvalidDiff({ message: `the hunk at line ${open.at} ends before the lines its header announces` }))
  }
  if (hunks.length === 0) return Either.left(new InvalidDiff({ message: "no hunk (no `@@ -a,b +c,d @@` line) found" }))
  return Either.right(hunks)
}

/** A change given as a unified diff; `rawDiff` is the text exactly as given. */
export const fromUnifiedDiff = (patch: string): Either.Either<Change, InvalidDiff> =>
  Either.map(parseHunks(patch), (hunks) => ({ rawDiff: patch, hunks }))

/** The diff that replaces every line, for texts too different for the library to diff in time. */
const replaceAll = (before: string, after: string): string => {
  const side = (text: string, prefix: string): Array<string> => {
    if (text === "") return []
    const lines = text.split("\n")
    const complete = lines[lines.length - 1] === ""
    if (complete) lines.pop()
    const prefixed = lines.map((line) => `${prefix}${line}`)
    return complete ? prefixed : [...prefixed, NO_NEWLINE]
  }
  const removed = side(before, "-")
  const added = side(after, "+")
  const count = (lines: ReadonlyArray<string>) => lines.filter((line) => line !== NO_NEWLINE).length
  const oldLines = count(removed)
  const newLines = count(added)
  return formatPatch(
    {
      oldFileName: "before",
      newFileName: "after",
      oldHeader: undefined,
      newHeader: undefined,
      // formatPatch prints the start of an empty side one lower, as `-0,0`.
      hunks: [{ oldStart: 1, oldLines, newStart: 1, newLines, lines: [...removed, ...added] }]
    },
    FILE_HEADERS_ONLY
  )
}

export interface FromTextsOptions {
  /** How long the diff library may search for the smallest diff before every line counts as changed. */
  readonly timeoutMs?: number
}

/**
 * A change given as two full texts: the unified diff is computed with the `diff` library
 * (3 lines of context, like git) and each hunk is located by the nearest heading above it.
 * Identical texts give a change with no hunk. Texts too different to diff in time give one hunk
 * replacing every line.
 */
export const fromTexts = (before: string, after: string, options: FromTextsOptions = {}): Change => {
  const computed = createTwoFilesPatch("before", "after", before, after, undefined, undefined, {
    context: CONTEXT_LINES,
    headerOptions: FILE_HEADERS_ONLY,
    timeout: options.timeoutMs ?? DIFF_TIMEOUT_MS
  })
  const rawDiff = computed ?? replaceAll(before, after)
  const afterLines = toLines(after)
  const hunks = Either.getOrElse(parseHunks(rawDiff), (): Array<Hunk> => [])
  return {
    rawDiff,
    hunks: hunks.map((hunk) => ({ ...hunk, location: nearestHeadingAbove(afterLines, hunk.newStart - 2) }))
  }
}

/** Every line a change removes, in order. */
export const removedLines = (change: Change): Array<string> =>
  change.hunks.flatMap((hunk) => hunk.lines.filter((line) => line.kind === "removed").map((line) => line.text))

/** Every line a change adds, in order. */
export const addedLines = (change: Change): Array<string> =>
  change.hunks.flatMap((hunk) => hunk.lines.filter((line) => line.kind === "added").map((line) => line.text))
