/** The eval's figures: per case, per run (one format), and the prompt-cost comparison of two runs. */

export interface CaseResult {
  readonly name: string
  readonly status: string
  readonly fallbackReason: string | null
  readonly headline: string | null
  readonly topics: ReadonlyArray<string>
  readonly severity: string | null
  readonly cosmetic: boolean | null
  readonly items: number
  readonly quotes: number
  readonly grounded: number
  readonly sections: number
  readonly covered: number
  readonly structuredError: string | null
  readonly promptTokens: number
  readonly completionTokens: number
  /** Exact decimal text; null when unknown or when no call was made. */
  readonly costUsd: string | null
  readonly latencyMs: number
  readonly attempts: number
  readonly notes: string | null
}

export interface Totals {
  readonly cases: number
  readonly summarized: number
  readonly fallbacks: number
  readonly cosmetic: number
  readonly structured: number
  readonly structuredErrors: number
  readonly quotes: number
  readonly grounded: number
  /** grounded / quotes; null when no quote was checked. */
  readonly groundingRate: number | null
  readonly sections: number
  readonly covered: number
  readonly coverageRate: number | null
  readonly promptTokens: number
  readonly completionTokens: number
  readonly costUsd: string
  /** Over the cases that called the model. */
  readonly costPerSummaryUsd: string | null
  readonly attempts: number
  readonly latencyP50Ms: number | null
  readonly latencyP95Ms: number | null
}

export interface RunResult {
  readonly format: string
  readonly cases: ReadonlyArray<CaseResult>
  readonly totals: Totals
}

export interface Results {
  readonly mode: "emulator" | "live"
  readonly model: string
  readonly date: string
  readonly casesDir: string
  readonly maxTokens: number
  readonly promptVersion: string
  readonly structuredPromptVersion: string
  /** The json_schema sent in each structured request's body, estimated (3-4 characters a token); providers count it as prompt. */
  readonly schemaTokensPerCall: number
  readonly run: RunResult
  /** Today's text prompt on the same cases, when it was run too. */
  readonly baseline: RunResult | null
}

const pct = (rate: number | null): string => (rate === null ? "n/a" : `${(rate * 100).toFixed(1)}%`)
const cell = (value: string): string => value.replace(/\|/g, "\\|").replace(/\s+/g, " ")

const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string =>
  [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((row) => `| ${row.map((v) => cell(String(v))).join(" | ")} |`)].join("\n")

const totalsTable = (runs: ReadonlyArray<RunResult>): string =>
  table(["", ...runs.map((r) => r.format)], [
    ["cases (summarized / fallback / cosmetic, no call)", ...runs.map((r) => `${r.totals.cases} (${r.totals.summarized} / ${r.totals.fallbacks} / ${r.totals.cosmetic})`)],
    ["structured results / structuredError", ...runs.map((r) => `${r.totals.structured} / ${r.totals.structuredErrors}`)],
    ["grounding rate (grounded / quotes)", ...runs.map((r) => `${pct(r.totals.groundingRate)} (${r.totals.grounded} / ${r.totals.quotes})`)],
    ["coverage rate (covered / sections)", ...runs.map((r) => `${pct(r.totals.coverageRate)} (${r.totals.covered} / ${r.totals.sections})`)],
    ["prompt + completion tokens", ...runs.map((r) => `${r.totals.promptTokens} + ${r.totals.completionTokens}`)],
    ["upstream calls (attempts)", ...runs.map((r) => r.totals.attempts)],
    ["cost, total USD", ...runs.map((r) => r.totals.costUsd)],
    ["cost per summary, USD", ...runs.map((r) => r.totals.costPerSummaryUsd ?? "n/a")],
    ["latency p50 / p95, ms", ...runs.map((r) => `${r.totals.latencyP50Ms ?? "n/a"} / ${r.totals.latencyP95Ms ?? "n/a"}`)]
  ])

const caseTable = (run: RunResult): string =>
  table(
    ["case", "status", "severity", "topics", "items", "grounded/quotes", "covered/sections", "prompt", "completion", "cost USD", "ms", "attempts"],
    run.cases.map((c) => [
      c.name,
      c.fallbackReason === null ? (c.structuredError === null ? c.status : `${c.status} (structuredError)`) : `fallback: ${c.fallbackReason}`,
      c.severity ?? "-",
      c.topics.join(", ") || "-",
      c.items,
      `${c.grounded}/${c.quotes}`,
      `${c.covered}/${c.sections}`,
      c.promptTokens,
      c.completionTokens,
      c.costUsd ?? "-",
      c.latencyMs,
      c.attempts
    ])
  )

/** Prompt tokens per case of the two runs, where both called the model. */
export const promptComparison = (run: RunResult, baseline: RunResult) => {
  const pairs = run.cases.flatMap((c) => {
    const b = baseline.cases.find((x) => x.name === c.name)
    return b !== undefined && c.attempts > 0 && b.attempts > 0 ? [{ name: c.name, structured: c.promptTokens, text: b.promptTokens }] : []
  })
  const structured = pairs.reduce((n, p) => n + p.structured, 0)
  const text = pairs.reduce((n, p) => n + p.text, 0)
  return { cases: pairs.length, structuredPromptTokens: structured, textPromptTokens: text, ratio: text === 0 ? null : structured / text, pairs }
}

export const markdown = (results: Results): string => {
  const { baseline, run } = results
  const comparison = baseline === null ? null : promptComparison(run, baseline)
  return [
    "# Summary quality eval (`npm run eval`)",
    "",
    `Mode: **${results.mode}**${results.mode === "emulator" ? " (the local OpenRouter emulator, no real model: the figures exercise the pipeline, they do not measure a model's quality)" : ""}.`,
    `Model: \`${results.model}\`. Cases: \`${results.casesDir}\`. Completion cap: ${results.maxTokens} tokens. Run: ${results.date}.`,
    `Prompt versions: text ${results.promptVersion}, structured ${results.structuredPromptVersion}. Cache off; every case is one \`Summarizer.summarize\` of its diff.`,
    "",
    "## Totals",
    "",
    totalsTable(baseline === null ? [run] : [run, baseline]),
    "",
    ...(comparison === null
      ? []
      : [
        "## Prompt cost: structured prompt against today's text prompt",
        "",
        `On the ${comparison.cases} cases both runs sent to the model: ${comparison.structuredPromptTokens} prompt tokens (${run.format}) against ${comparison.textPromptTokens} (text), ` +
        `${comparison.ratio === null ? "n/a" : `${comparison.ratio.toFixed(2)}x`}. Prompt tokens as the upstream counted them` +
        `${results.mode === "emulator" ? " (the emulator counts message characters / 4 + 4 per message)" : ""}. ` +
        (results.mode === "emulator" && results.schemaTokensPerCall > 0
          ? `The json_schema in the body of each structured call is not in the emulator's count; providers bill it as prompt: about ${results.schemaTokensPerCall} tokens a call, ` +
            `${results.schemaTokensPerCall * run.totals.attempts} over the ${run.totals.attempts} calls, ` +
            `${((comparison.structuredPromptTokens + results.schemaTokensPerCall * run.totals.attempts) / Math.max(1, comparison.textPromptTokens)).toFixed(2)}x the text prompt with it. `
          : "") +
        "The text run's huge changes include its combining call; the structured run merges parts without one.",
        "",
        table(["case", "prompt tokens, structured", "prompt tokens, text", "ratio"], comparison.pairs.map((p) => [p.name, p.structured, p.text, (p.structured / Math.max(1, p.text)).toFixed(2)])),
        ""
      ]),
    `## Per case (${run.format})`,
    "",
    caseTable(run),
    "",
    ...(baseline === null ? [] : [`## Per case (${baseline.format}, the baseline)`, "", caseTable(baseline), ""]),
    "## Headlines beside the reference notes",
    "",
    table(["case", "headline", "meta.json notes (a person's reading)"], run.cases.map((c) => [c.name, c.headline ?? "-", c.notes ?? "-"])),
    ""
  ].join("\n")
}
