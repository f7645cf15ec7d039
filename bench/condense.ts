// CPU cost of the pure change processing one summary request does, per fixture: parse the diff,
// the cosmetic check, condense, render, the prompt overhead, the token estimate, the messages.
// Run: npx tsx bench/condense.ts [iterations]
import { readdirSync, readFileSync } from "node:fs"
import { pathToFileURL } from "node:url"
import { Either } from "effect"
import { fromUnifiedDiff } from "../src/summarize/Change.js"
import { condense, render } from "../src/summarize/Condense.js"
import { isCosmeticOnly } from "../src/summarize/Normalize.js"
import { buildMessages, overheadTokens } from "../src/summarize/Prompt.js"
import { estimateTokens } from "../src/summarize/Tokens.js"

const ROOT = new URL("../test/fixtures/policy-changes/", import.meta.url)
const HEADLINE_FIXTURE = "07-"
const WARMUP_ITERATIONS = 5

export interface FixtureTiming {
  readonly name: string
  /** Median milliseconds of one request's processing. */
  readonly ms: number
}

export interface CondenseFigures {
  readonly iterations: number
  readonly fixtures: ReadonlyArray<FixtureTiming>
  /** The median over the fixtures of their median time. */
  readonly medianMs: number
  readonly headlineFixture: string
  readonly headlineMs: number
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** What Summarizer does with a `diff` before calling the model, without the effects around it. */
const processRequest = (patch: string, document: { readonly service: string; readonly title: string }): number => {
  const change = Either.getOrThrow(fromUnifiedDiff(patch))
  const cosmetic = isCosmeticOnly(change)
  const text = render(condense(change))
  const budget = 100_000 - overheadTokens({ document })
  const messages = buildMessages({ changeText: text, document })
  return (cosmetic ? 1 : 0) + budget - estimateTokens(text) + messages.length
}

export const run = (iterations = 50): CondenseFigures => {
  const names = readdirSync(ROOT, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()
  const inputs = names.map((name) => {
    const read = (file: string) => readFileSync(new URL(`${name}/${file}`, ROOT), "utf8")
    const meta = JSON.parse(read("meta.json")) as { service: string; document_type: string }
    return { name, patch: read("diff.patch"), document: { service: meta.service, title: meta.document_type } }
  })
  // A result that is used keeps the JIT from dropping the work.
  let sink = 0
  for (let i = 0; i < WARMUP_ITERATIONS; i++) for (const input of inputs) sink += processRequest(input.patch, input.document)
  const samples = inputs.map((): Array<number> => [])
  // Fixtures interleaved per iteration, so a burst of load on the shared machine spreads over all.
  for (let i = 0; i < iterations; i++) {
    inputs.forEach((input, index) => {
      const start = performance.now()
      sink += processRequest(input.patch, input.document)
      samples[index]!.push(performance.now() - start)
    })
  }
  if (Number.isNaN(sink)) console.log("unreachable")
  const fixtures = inputs.map((input, index) => ({ name: input.name, ms: median(samples[index]!) }))
  const headline = fixtures.find((f) => f.name.startsWith(HEADLINE_FIXTURE))!
  return { iterations, fixtures, medianMs: median(fixtures.map((f) => f.ms)), headlineFixture: headline.name, headlineMs: headline.ms }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = run(Number(process.argv[2] ?? 50))
  console.log(`ms per request (median of ${figures.iterations}): fromUnifiedDiff + isCosmeticOnly + condense + render + overheadTokens + estimateTokens + buildMessages`)
  for (const f of figures.fixtures) console.log(`${f.name.padEnd(50)} ${f.ms.toFixed(3).padStart(9)}`)
  console.log(`median over ${figures.fixtures.length} fixtures: ${figures.medianMs.toFixed(3)} ms; ${figures.headlineFixture}: ${figures.headlineMs.toFixed(3)} ms`)
}
