// Words found by hand rather than with `\p{...}` regexes, which cost several times more per
// character on the mostly ASCII text of policies; only other characters go through a regex.
const LETTER = /^\p{L}$/u
const WHITESPACE = /^\s$/
const LETTER_OR_NUMBER = /^[\p{L}\p{N}]$/u

const isAsciiLetter = (code: number): boolean => (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a)

/** True for a UTF-16 unit of `\s`. */
export const isWhitespace = (code: number): boolean =>
  code < 0x80 ? code === 0x20 || (code >= 0x09 && code <= 0x0d) : WHITESPACE.test(String.fromCharCode(code))

/** True for a code point of `\p{L}`. */
export const isLetter = (code: number): boolean =>
  code < 0x80 ? isAsciiLetter(code) : LETTER.test(String.fromCodePoint(code))

/** True for a code point of `[\p{L}\p{N}]`. */
export const isLetterOrNumber = (code: number): boolean =>
  code < 0x80 ? isAsciiLetter(code) || (code >= 0x30 && code <= 0x39) : LETTER_OR_NUMBER.test(String.fromCodePoint(code))

/**
 * Calls `onRun(start, end)` for each longest run of code points of `text` that `inRun` accepts,
 * in order: the matches of `/[...]+/gu` for the class `inRun` tests (a lone surrogate is its own
 * code point, as with the `u` flag).
 */
export const forEachRun = (text: string, inRun: (code: number) => boolean, onRun: (start: number, end: number) => void): void => {
  let start = -1
  for (let index = 0; index < text.length;) {
    const code = text.codePointAt(index)!
    if (inRun(code)) {
      if (start < 0) start = index
    } else if (start >= 0) {
      onRun(start, index)
      start = -1
    }
    index += code > 0xffff ? 2 : 1
  }
  if (start >= 0) onRun(start, text.length)
}
