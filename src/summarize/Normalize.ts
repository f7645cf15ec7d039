import type { Change } from "./Change.js"

// Characters that render as nothing: byte-order mark / zero-width no-break space, zero-width space,
// non-joiner and joiner, word joiner, soft hyphen. Editors and CMSs sprinkle them into policies.
const INVISIBLE = /[\u00AD\u200B-\u200D\u2060\uFEFF]/g
// `\s` already covers U+00A0, U+2000-U+200A, U+202F and U+3000; entities are spelled out here.
const SPACE_ENTITY = /&(?:nbsp|#160|#xa0);/gi
const LINE_BREAK_TAG = /<br\s*\/?>/gi
const WHITESPACE_RUN = /\s+/g
// Converters escape Markdown punctuation inconsistently between versions (`2\. Privacy` vs `2. Privacy`).
const MARKDOWN_ESCAPE = /\\([\\`*_{}[\]()#+\-.!|<>~])/g
// Setext underlines (`===`, `---`) and thematic breaks (`***`, `___`, `- - -`): pure decoration.
const DECORATION = /^\s*(?:=+|(?:-\s*){2,}|(?:\*\s*){3,}|(?:_\s*){3,})\s*$/

/** Removes zero-width characters and byte-order marks, which change bytes but not what a reader sees. */
export const stripInvisible = (text: string): string => text.replace(INVISIBLE, "")

// Something `normalizeInline` would change: an invisible character, a backslash, whitespace other
// than a plain space, two spaces, a space entity or `<br>` (a space at either end is tested apart).
const NOT_NORMAL = /[\u00AD\u200B-\u200D\u2060\uFEFF\\]|[^\S ]|  |&(?:nbsp|#160|#xa0);|<br\s*\/?>/i

/**
 * One line as a reader sees it: invisible characters removed, non-breaking spaces and `<br>` as
 * plain spaces, Markdown backslash escapes undone, whitespace runs collapsed, trimmed. Used both
 * for comparison and in the prompt.
 */
export const normalizeInline = (text: string): string => {
  // Most lines of a policy are already normal: one scan instead of five replacements.
  if (!NOT_NORMAL.test(text) && !text.startsWith(" ") && !text.endsWith(" ")) return text
  return stripInvisible(text)
    .replace(SPACE_ENTITY, " ")
    .replace(LINE_BREAK_TAG, " ")
    .replace(MARKDOWN_ESCAPE, "$1")
    .replace(WHITESPACE_RUN, " ")
    .trim()
}

/** True for a setext underline or a thematic break: a line that only decorates. */
export const isDecoration = (line: string): boolean => DECORATION.test(stripInvisible(line))

/** The key two lines are compared by: decoration (whose length follows its heading) counts as blank. */
export const comparableLine = (line: string): string => (isDecoration(line) ? "" : normalizeInline(line))

/**
 * True when every hunk reads the same before and after once normalized: whitespace,
 * re-indentation, re-wrapping, invisible characters, `<br>` versus a space, Markdown backslash
 * escapes and setext underline length only. A change with no hunk at all is cosmetic too. Such a change needs no model call.
 */
export const isCosmeticOnly = (change: Change): boolean =>
  change.hunks.every((hunk) => {
    // Each side as one comparable string, so that re-wrapping and blank-line churn vanish too;
    // a context line, on both sides, is normalized once.
    const before: Array<string> = []
    const after: Array<string> = []
    for (const line of hunk.lines) {
      const key = comparableLine(line.text)
      if (key === "") continue
      if (line.kind !== "added") before.push(key)
      if (line.kind !== "removed") after.push(key)
    }
    return before.join(" ") === after.join(" ")
  })
