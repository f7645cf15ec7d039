import { describe, expect, it } from "@effect/vitest"
import { estimateMessagesTokens, estimateTokens } from "../../../src/summarize/Tokens.js"

describe("estimateTokens", () => {
  it("counts at least a token per four characters of English, and nothing for nothing", () => {
    const text = "We may share your personal information with our partners for advertising purposes."
    expect(estimateTokens("")).toBe(0)
    expect(estimateTokens(text)).toBeGreaterThanOrEqual(Math.ceil(text.length / 4))
    expect(estimateTokens(text)).toBeLessThanOrEqual(Math.ceil(text.length / 3))
  })

  it("counts accented text, other scripts and emoji as dearer", () => {
    expect(estimateTokens("données personnelles réutilisées")).toBeGreaterThan(estimateTokens("donnees personnelles reutilisees"))
    expect(estimateTokens("個人情報の取り扱い")).toBeGreaterThanOrEqual(9)
    expect(estimateTokens("🙂🙂")).toBe(4)
  })

  it("reads a surrogate pair as one astral character and a lone surrogate as another script's", () => {
    expect(estimateTokens("a🙂b")).toBe(Math.ceil(2 / 3.5 + 2))
    expect(estimateTokens("a\uD83Db")).toBe(Math.ceil(2 / 3.5 + 1))
    expect(estimateTokens("\uDE42\uD83D")).toBe(2)
  })

  it("adds each message's framing", () => {
    expect(estimateMessagesTokens([{ role: "system", content: "" }, { role: "user", content: "abcdefg" }])).toBe(4 + 4 + 2)
  })
})
