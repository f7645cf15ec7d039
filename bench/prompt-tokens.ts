// Prompt tokens with the condensed change versus the plain unified diff, over the 28 fixtures.
// Run: npx tsx bench/prompt-tokens.ts
import { readdirSync, readFileSync } from "node:fs"
import { pathToFileURL } from "node:url"
import { Either } from "effect"
import { fromUnifiedDiff } from "../src/summarize/Change.js"
import { condense, render } from "../src/summarize/Condense.js"
import { buildMessages } from "../src/summarize/Prompt.js"
import { estimateMessagesTokens, estimateTokens } from "../src/summarize/Tokens.js"

const ROOT = new URL("../test/fixtures/policy-changes/", import.meta.url)

export interface FixtureFigures {
  readonly name: string
  readonly kind: string
  /** Prompt tokens when the change text is the fixture's `diff.patch` as is. */
  readonly diffTokens: number
  /** Prompt tokens when the change text is `render(condense(change))`. */
  readonly condensedTokens: number
  /** condensedTokens / diffTokens */
  readonly ratio: number
  /** The change text alone, without the prompt around it: the diff, then the condensed text. */
  readonly diffTextTokens: number
  readonly condensedTextTokens: number
}

export interface Figures {
  readonly fixtures: ReadonlyArray<FixtureFigures>
  readonly totalDiffTokens: number
  readonly totalCondensedTokens: number
  readonly medianRatio: number
  /** 1 - totalCondensedTokens / totalDiffTokens, in percent. */
  readonly reductionPercent: number
  /** The same reduction on the change texts alone. */
  readonly textReductionPercent: number
  readonly medianTextRatio: number
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export const run = (): Figures => {
  const names = readdirSync(ROOT, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()
  const fixtures = names.map((name): FixtureFigures => {
    const read = (file: string) => readFileSync(new URL(`${name}/${file}`, ROOT), "utf8")
    const patch = read("diff.patch")
    const meta = JSON.parse(read("meta.json")) as { kind: string; service: string; document_type: string }
    const document = { service: meta.service, title: meta.document_type }
    const change = Either.getOrThrow(fromUnifiedDiff(patch))
    const condensed = render(condense(change))
    const diffTokens = estimateMessagesTokens(buildMessages({ changeText: patch, document }))
    const condensedTokens = estimateMessagesTokens(buildMessages({ changeText: condensed, document }))
    return {
      name,
      kind: meta.kind,
      diffTokens,
      condensedTokens,
      ratio: condensedTokens / diffTokens,
      diffTextTokens: estimateTokens(patch),
      condensedTextTokens: estimateTokens(condensed)
    }
  })
  const totalDiffTokens = fixtures.reduce((sum, f) => sum + f.diffTokens, 0)
  const totalCondensedTokens = fixtures.reduce((sum, f) => sum + f.condensedTokens, 0)
  const totalDiffText = fixtures.reduce((sum, f) => sum + f.diffTextTokens, 0)
  const totalCondensedText = fixtures.reduce((sum, f) => sum + f.condensedTextTokens, 0)
  return {
    fixtures,
    totalDiffTokens,
    totalCondensedTokens,
    medianRatio: median(fixtures.map((f) => f.ratio)),
    reductionPercent: 100 * (1 - totalCondensedTokens / totalDiffTokens),
    textReductionPercent: 100 * (1 - totalCondensedText / totalDiffText),
    medianTextRatio: median(fixtures.map((f) => f.condensedTextTokens / f.diffTextTokens))
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = run()
  const pad = (value: string | number, width: number) => String(value).padStart(width)
  const row = (name: string, kind: string, cells: ReadonlyArray<string | number>) =>
    console.log(`${name.padEnd(50)} ${pad(kind, 6)} ${cells.map((cell) => pad(cell, 9)).join(" ")}`)
  console.log("prompt tokens (estimateTokens of the whole prompt) with the plain diff and with the condensed change; then the change text alone")
  row("fixture", "kind", ["diff", "condensed", "ratio", "diff txt", "cond txt", "ratio"])
  for (const f of figures.fixtures) {
    row(f.name, f.kind, [f.diffTokens, f.condensedTokens, f.ratio.toFixed(2), f.diffTextTokens, f.condensedTextTokens, (f.condensedTextTokens / f.diffTextTokens).toFixed(2)])
  }
  row("total", "", [figures.totalDiffTokens, figures.totalCondensedTokens, "", figures.fixtures.reduce((s, f) => s + f.diffTextTokens, 0), figures.fixtures.reduce((s, f) => s + f.condensedTextTokens, 0)])
  console.log(`prompt: median ratio ${figures.medianRatio.toFixed(3)}, overall reduction ${figures.reductionPercent.toFixed(1)}%`)
  console.log(`change text alone: median ratio ${figures.medianTextRatio.toFixed(3)}, overall reduction ${figures.textReductionPercent.toFixed(1)}%`)
}
