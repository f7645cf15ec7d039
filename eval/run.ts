/**
 * `npm run eval [-- --cases DIR] [-- --live --model ID] [-- --max-tokens N] [-- --format structured|json|text] [-- --baseline|--no-baseline]`
 *
 * Summarizes every case of a folder of policy changes (default: test/fixtures/policy-changes) and
 * writes eval/RESULTS.md and eval/results.json: per case status, headline, topics, severity,
 * items, grounded/quotes, covered/sections, tokens, cost, latency and attempts; totals with the
 * grounding and coverage rates, cost per summary and p50/p95 latency. By default it runs against
 * the local OpenRouter emulator on a throwaway embedded database, so no key is needed and nothing
 * is spent. With `--live` and OPENROUTER_API_KEY it calls the real model through the environment's
 * settings (its ledger records the spend). A baseline run in text mode measures the prompt cost of
 * the structured prompt against today's text prompt on the same cases (always in emulator mode;
 * with `--baseline` in live mode, since it doubles the spend).
 */
import { BigDecimal, ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { Config } from "../src/Config.js"
import { format as formatMoney } from "../src/domain/Money.js"
import { SummaryServices } from "../src/Services.js"
import { PROMPT_VERSION, STRUCTURED_PROMPT_VERSION } from "../src/summarize/Prompt.js"
import { answerJsonSchema } from "../src/summarize/StructuredSummary.js"
import type { Summary } from "../src/summarize/Summary.js"
import { Summarizer } from "../src/summarize/Summarizer.js"
import { estimateTokens } from "../src/summarize/Tokens.js"
import { startEmulator } from "../test/support/OpenRouterEmulator.js"
import { type EvalCase, loadCases } from "./cases.js"
import { type CaseResult, markdown, promptComparison, type Results, type RunResult, type Totals } from "./report.js"

const HERE = Path.dirname(new URL(import.meta.url).pathname)
const ROOT = Path.resolve(HERE, "..")

interface Options {
  readonly cases: string
  readonly live: boolean
  readonly model: string
  readonly maxTokens: number | null
  readonly format: "structured" | "json" | "text"
  readonly baseline: boolean | null
  readonly out: string
}

const parseArgs = (argv: ReadonlyArray<string>): Options => {
  const value = (name: string) => {
    const at = argv.indexOf(name)
    return at >= 0 ? argv[at + 1] : argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1)
  }
  const format = value("--format") ?? "structured"
  if (format !== "structured" && format !== "json" && format !== "text") throw new Error(`--format must be structured, json or text, got ${format}`)
  const maxTokens = value("--max-tokens")
  return {
    cases: Path.resolve(value("--cases") ?? Path.join(ROOT, "test/fixtures/policy-changes")),
    live: argv.includes("--live"),
    model: value("--model") ?? process.env["OPENROUTER_DEFAULT_MODEL"] ?? "openai/gpt-4o-mini",
    maxTokens: maxTokens === undefined ? null : Number(maxTokens),
    format,
    baseline: argv.includes("--baseline") ? true : argv.includes("--no-baseline") ? false : null,
    out: Path.resolve(value("--out") ?? HERE)
  }
}

const percentile = (values: ReadonlyArray<number>, p: number): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

const caseResult = (c: EvalCase, s: Summary): CaseResult => ({
  name: c.name,
  status: s.status,
  fallbackReason: s.fallbackReason,
  headline: s.structured?.headline ?? (s.summary === null ? null : s.summary.split("\n")[0]!.slice(0, 200)),
  topics: [...new Set(s.structured?.changes.map((change) => change.topic) ?? [])],
  severity: s.structured?.severity ?? null,
  cosmetic: s.structured?.cosmetic ?? null,
  items: s.structured?.changes.length ?? 0,
  quotes: s.grounding?.quotes ?? 0,
  grounded: s.grounding?.grounded ?? 0,
  sections: s.grounding?.sections ?? 0,
  covered: s.grounding?.covered ?? 0,
  structuredError: s.structuredError,
  promptTokens: s.usage?.promptTokens ?? 0,
  completionTokens: s.usage?.completionTokens ?? 0,
  costUsd: s.usage?.costUsd ?? null,
  latencyMs: s.latencyMs,
  attempts: s.attempts,
  notes: c.notes
})

const totalsOf = (cases: ReadonlyArray<CaseResult>): Totals => {
  const called = cases.filter((c) => c.attempts > 0)
  const sumOf = (f: (c: CaseResult) => number) => cases.reduce((n, c) => n + f(c), 0)
  const cost = cases.reduce((total, c) => (c.costUsd === null ? total : BigDecimal.sum(total, BigDecimal.unsafeFromString(c.costUsd))), BigDecimal.fromBigInt(0n))
  const quotes = sumOf((c) => c.quotes)
  const sections = sumOf((c) => c.sections)
  return {
    cases: cases.length,
    summarized: cases.filter((c) => c.status === "summarized").length,
    fallbacks: cases.filter((c) => c.status === "fallback").length,
    cosmetic: cases.filter((c) => c.attempts === 0 && c.status === "summarized").length,
    structured: cases.filter((c) => c.severity !== null && c.attempts > 0).length,
    structuredErrors: cases.filter((c) => c.structuredError !== null).length,
    quotes,
    grounded: sumOf((c) => c.grounded),
    groundingRate: quotes === 0 ? null : sumOf((c) => c.grounded) / quotes,
    sections,
    covered: sumOf((c) => c.covered),
    coverageRate: sections === 0 ? null : sumOf((c) => c.covered) / sections,
    promptTokens: sumOf((c) => c.promptTokens),
    completionTokens: sumOf((c) => c.completionTokens),
    costUsd: formatMoney(cost),
    costPerSummaryUsd: called.length === 0 ? null : formatMoney(BigDecimal.round(BigDecimal.unsafeDivide(cost, BigDecimal.fromBigInt(BigInt(called.length))), { scale: 10, mode: "half-even" })),
    attempts: sumOf((c) => c.attempts),
    latencyP50Ms: percentile(called.map((c) => c.latencyMs), 50),
    latencyP95Ms: percentile(called.map((c) => c.latencyMs), 95)
  }
}

/** Every case through the summarizer wired as the service wires it, with `env` as its whole configuration. */
const runCases = (cases: ReadonlyArray<EvalCase>, env: Readonly<Record<string, string>>, format: string, warmUp: boolean): Effect.Effect<RunResult> =>
  Effect.gen(function*() {
    const summarizer = yield* Summarizer
    const summarize = (c: EvalCase) => {
      const document = {
        ...(c.service === null ? {} : { service: c.service }),
        ...(c.documentType === null ? {} : { title: c.documentType })
      }
      return summarizer.summarize({ change: c.change, document }).pipe(Effect.orDieWith((e) => new Error(`${c.name}: ${e._tag}`)))
    }
    // Against the emulator, one unrecorded case first, so the first recorded latency is not the JIT's and the database's warm-up.
    if (warmUp && cases[0] !== undefined) yield* summarize(cases[0])
    const results: Array<CaseResult> = []
    for (const c of cases) {
      const summary = yield* summarize(c)
      const result = caseResult(c, summary)
      results.push(result)
      yield* Effect.sync(() =>
        process.stdout.write(`${format} ${c.name}: ${result.status}${result.fallbackReason ? ` (${result.fallbackReason})` : ""}, ${result.items} items, ${result.grounded}/${result.quotes} grounded, ${result.covered}/${result.sections} covered, ${result.attempts} calls\n`)
      )
    }
    return { format, cases: results, totals: totalsOf(results) }
  }).pipe(
    Effect.provide(SummaryServices.pipe(Layer.provide(Config.layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))))),
    Effect.scoped,
    Effect.orDieWith((error) => new Error(`the service did not start: ${String(error)}`))
  )

const main = async () => {
  const options = parseArgs(process.argv.slice(2))
  const apiKey = process.env["OPENROUTER_API_KEY"]
  if (options.live && (apiKey === undefined || apiKey === "")) {
    process.stderr.write("--live needs OPENROUTER_API_KEY; without --live the eval runs against the emulator.\n")
    process.exitCode = 1
    return
  }
  const cases = loadCases(options.cases)
  const mode = options.live ? "live" : "emulator"
  // The emulator answers one item per section, more than the 8 a model is asked for: room for its largest answer.
  const maxTokens = options.maxTokens ?? (options.live ? Number(process.env["OPENROUTER_MAX_TOKENS"] ?? 1500) : 8000)
  process.stdout.write(`Eval: ${mode} mode, model ${options.model}, ${cases.length} cases from ${options.cases}, SUMMARY_FORMAT=${options.format}\n`)

  const emulator = options.live ? null : await startEmulator()
  const dataDir = mkdtempSync(Path.join(tmpdir(), "policy-summarizer-eval-"))
  const base: Record<string, string> = emulator === null
    ? Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined))
    : {
      // A throwaway embedded database: emulator calls never reach a real ledger.
      OPENROUTER_BASE_URL: emulator.baseUrl,
      OPENROUTER_API_KEY: "sk-or-v1-eval-emulator",
      DATA_DIR: dataDir,
      LLM_RATE_LIMIT_REQUESTS: "100000"
    }
  const envFor = (format: string, dir: string): Record<string, string> => ({
    ...base,
    ...(emulator === null ? {} : { DATA_DIR: dir }),
    OPENROUTER_DEFAULT_MODEL: options.model,
    OPENROUTER_ALLOWED_MODELS: options.model,
    OPENROUTER_MAX_TOKENS: String(maxTokens),
    SUMMARY_FORMAT: format,
    SUMMARY_CACHE_TTL_MS: "0",
    LOG_LEVEL: "warning"
  })
  const quiet = <A>(effect: Effect.Effect<A>) =>
    effect.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withLeveledConsole(Logger.logfmtLogger))),
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
  try {
    const run = await Effect.runPromise(quiet(runCases(cases, envFor(options.format, Path.join(dataDir, "run")), options.format, !options.live)))
    const wantBaseline = options.format !== "text" && (options.baseline ?? !options.live)
    const baseline = wantBaseline ? await Effect.runPromise(quiet(runCases(cases, envFor("text", Path.join(dataDir, "baseline")), "text", !options.live))) : null
    const results: Results = {
      mode,
      model: options.model,
      date: new Date().toISOString(),
      casesDir: Path.relative(ROOT, options.cases) || ".",
      maxTokens,
      promptVersion: PROMPT_VERSION,
      structuredPromptVersion: STRUCTURED_PROMPT_VERSION,
      schemaTokensPerCall: options.format === "structured" ? estimateTokens(JSON.stringify(answerJsonSchema())) : 0,
      run,
      baseline
    }
    mkdirSync(options.out, { recursive: true })
    const comparison = baseline === null ? null : promptComparison(run, baseline)
    writeFileSync(
      Path.join(options.out, "results.json"),
      `${JSON.stringify({ ...results, promptComparison: comparison }, null, 2)}\n`
    )
    writeFileSync(Path.join(options.out, "RESULTS.md"), markdown(results))
    const t = run.totals
    process.stdout.write(
      `\n${mode} mode: grounding ${t.groundingRate === null ? "n/a" : (t.groundingRate * 100).toFixed(1)}%, coverage ${t.coverageRate === null ? "n/a" : (t.coverageRate * 100).toFixed(1)}%, ` +
        `cost per summary $${t.costPerSummaryUsd ?? "n/a"}, latency p50 ${t.latencyP50Ms} ms / p95 ${t.latencyP95Ms} ms` +
        `${comparison === null ? "" : `; prompt tokens ${comparison.structuredPromptTokens} (${options.format}) vs ${comparison.textPromptTokens} (text) = ${comparison.ratio?.toFixed(2)}x`}\n` +
        `Wrote ${Path.join(options.out, "RESULTS.md")} and results.json\n`
    )
  } finally {
    await emulator?.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exitCode = 1
})
