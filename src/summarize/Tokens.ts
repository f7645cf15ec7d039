import type { ChatMessage } from "../domain/Completion.js"

// Common BPE tokenizers (cl100k, o200k) give about 4 to 4.5 characters per token on English
// prose and 3.5 to 4 on French, German, URLs and Markdown. Counting 3.5 per ASCII character errs
// on the generous side, so a budget computed from it is rarely exceeded for real.
const ASCII_CHARS_PER_TOKEN = 3.5
// Accented letters, typographic quotes and dashes often split words into extra tokens.
const LATIN_EXTRA_TOKENS = 0.5
// Other scripts (Cyrillic, Greek, CJK, ...) cost about a token per character; emoji and other
// astral characters about two.
const OTHER_SCRIPT_TOKENS = 1
const ASTRAL_TOKENS = 2
// What a chat API adds around each message (role markers).
const PER_MESSAGE_TOKENS = 4

const isLatinExtra = (code: number): boolean =>
  code <= 0x024f || (code >= 0x1e00 && code <= 0x1eff) || (code >= 0x2000 && code <= 0x206f) || code === 0x20ac

/**
 * A cheap, deterministic and slightly generous token estimate: ASCII characters (spaces
 * included) at 3.5 per token, plus half a token per accented Latin letter or typographic
 * punctuation, one per character of another script, two per astral character (emoji).
 */
export const estimateTokens = (text: string): number => {
  let ascii = 0
  let extra = 0
  // By UTF-16 unit rather than `for of`, which allocates a string per character; a surrogate pair
  // is read as one code point, a lone surrogate as itself, as `for of` does.
  for (let index = 0; index < text.length; index++) {
    const code = text.codePointAt(index)!
    if (code < 0x80) ascii++
    else if (code > 0xffff) {
      extra += ASTRAL_TOKENS
      index++
    } else if (isLatinExtra(code)) {
      ascii++
      extra += LATIN_EXTRA_TOKENS
    } else extra += OTHER_SCRIPT_TOKENS
  }
  return Math.ceil(ascii / ASCII_CHARS_PER_TOKEN + extra)
}

/** The estimate for a whole chat request: each message's content plus its framing. */
export const estimateMessagesTokens = (messages: ReadonlyArray<ChatMessage>): number =>
  messages.reduce((total, message) => total + PER_MESSAGE_TOKENS + estimateTokens(message.content), 0)
