import { describe, expect, it } from "@effect/vitest"
import { applyPatch } from "diff"
import { Either } from "effect"
import { addedLines, fromTexts, fromUnifiedDiff, removedLines } from "../../../src/summarize/Change.js"
import { loadFixtures } from "./fixtures.js"

const fixtures = loadFixtures()

// git and the `diff` library may pair blank lines differently; the text that changed is the same.
const changedText = (lines: ReadonlyArray<string>) => lines.filter((line) => line.trim() !== "").sort()

describe("fromUnifiedDiff", () => {
  it.each(fixtures.map((f) => [f.name, f] as const))("parses the fixture diff of %s", (_, f) => {
    const change = Either.getOrThrow(fromUnifiedDiff(f.patch))
    expect(change.rawDiff).toBe(f.patch)
    expect(change.hunks.length).toBe(f.patch.split("\n").filter((line) => line.startsWith("@@ ")).length)
    for (const hunk of change.hunks) {
      expect(hunk.lines.filter((line) => line.kind !== "added").length).toBe(hunk.oldLines)
      expect(hunk.lines.filter((line) => line.kind !== "removed").length).toBe(hunk.newLines)
    }
  })

  it("reads `\\ No newline at end of file` as a marker, not a line", () => {
    const change = Either.getOrThrow(fromUnifiedDiff(fixtures.find((f) => f.name.startsWith("06"))!.patch))
    expect(removedLines(change)).toEqual(["Last revised: January 2026"])
    expect(addedLines(change)).toEqual(["Last revised: April 2026"])
  })

  it("keeps git's function context as the hunk's location when it is a heading or a short line", () => {
    const located = (context: string) => Either.getOrThrow(fromUnifiedDiff(`@@ -1,2 +1,2 @@ ${context}\n a\n-b\n+c\n`)).hunks[0]!.location
    expect(located("## Cookies")).toBe("Cookies")
    expect(located("Roblox Community Standards")).toBe("Roblox Community Standards")
    // git cuts the line at 80 characters: the start of some paragraph says little about where we are.
    expect(located("Accessing and using PlayStation and its Content may require an internet connecti")).toBeNull()
    expect(located("")).toBeNull()
  })

  it("returns the given text byte for byte, CRLF and trailing spaces included", () => {
    const patch = "--- a/p.md\r\n+++ b/p.md\r\n@@ -1 +1 @@\r\n-old  \r\n+new\r\n"
    const change = Either.getOrThrow(fromUnifiedDiff(patch))
    expect(change.rawDiff).toBe(patch)
    expect(removedLines(change)).toEqual(["old  "])
  })

  it.each([
    ["plain text", "We updated our privacy policy."],
    ["headers without a hunk", "diff --git a/old.md b/new.md\n--- a/old.md\n+++ b/new.md\n"],
    ["a hunk cut short", "@@ -1,3 +1,3 @@\n a\n-b\n"],
    ["a stray line inside a hunk", "@@ -1,2 +1,2 @@\n a\n*b\n+c\n"],
    ["more lines than announced", "@@ -1 +1 @@\n-a\n-b\n+c\n"],
    ["an empty text", ""]
  ])("refuses %s with a message saying why", (_, patch) => {
    const result = fromUnifiedDiff(patch)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left._tag).toBe("InvalidDiff")
      expect(result.left.message).not.toBe("")
    }
  })
})

describe("fromTexts", () => {
  it.each(fixtures.map((f) => [f.name, f] as const))("finds the same changed lines as git for %s", (_, f) => {
    const computed = fromTexts(f.before, f.after)
    const given = Either.getOrThrow(fromUnifiedDiff(f.patch))
    expect(changedText(removedLines(computed))).toEqual(changedText(removedLines(given)))
    expect(changedText(addedLines(computed))).toEqual(changedText(addedLines(given)))
    // The diff handed back is a real one: applied to the old text it gives the new text exactly.
    expect(applyPatch(f.before, computed.rawDiff)).toBe(f.after)
  })

  it("locates each hunk by the nearest heading above it", () => {
    const before = "# Terms\n\nintro\n\n## Cookies\n\na\nb\nc\nd\ne\nf\n"
    const change = fromTexts(before, before.replace("f\n", "F\n"))
    expect(change.hunks[0]!.location).toBe("Cookies")
  })

  it.each([
    ["an empty old text", "", "a\nb\n"],
    ["an empty new text", "a\nb", ""],
    ["no final newline on either side", "a\nb\nc", "a\nB\nc"],
    ["a final newline added", "a\nb", "a\nb\n"],
    ["CRLF line ends", "a\r\nb\r\n", "a\r\nc\r\n"]
  ])("computes a diff that applies for %s", (_, before, after) => {
    const change = fromTexts(before, after)
    expect(applyPatch(before, change.rawDiff)).toBe(after)
    expect(change.hunks.length).toBe(1)
  })

  it("falls back to one hunk replacing every line when the texts take too long to diff", () => {
    const f = fixtures.find((x) => x.name.startsWith("39"))!
    const change = fromTexts(f.before, f.after, { timeoutMs: 0 })
    expect(change.hunks).toHaveLength(1)
    expect(removedLines(change)).toEqual(f.before.split("\n"))
    expect(addedLines(change)).toEqual(f.after.split("\n"))
    expect(applyPatch(f.before, change.rawDiff)).toBe(f.after)
    expect(Either.getOrThrow(fromUnifiedDiff(change.rawDiff)).hunks).toEqual(change.hunks.map((hunk) => ({ ...hunk, location: null })))
  })

  it("gives a change without hunks for identical texts", () => {
    const change = fromTexts("same", "same")
    expect(change.hunks).toEqual([])
    expect(change.rawDiff).not.toContain("@@")
  })
})
