/** The summary table and `bench/RESULTS.md` of `bench/run.ts`. */
import type { Effect } from "effect"
import { type ScenarioFigures, table as changeTable } from "./change-load.js"
import type { JobsScenario } from "./jobs.js"
import type * as LedgerBench from "./ledger.js"
import type { ContenderResult, OverheadResult } from "./overhead.js"
import type { Figures } from "./prompt-tokens.js"
import type * as RateLimiterBench from "./ratelimiter.js"

export type LedgerFigures = Effect.Effect.Success<ReturnType<typeof LedgerBench.run>>
export type LimiterFigures = Awaited<ReturnType<typeof RateLimiterBench.run>>

export interface Machine {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGb: number
  readonly node: string
  readonly loadBefore: string
  readonly loadAfter: string
}

/** A section's figures, or why it has none. */
export type Outcome<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: string }

export interface AllResults {
  readonly date: string
  readonly command: string
  readonly quick: boolean
  readonly minutes: number
  readonly machine: Machine
  readonly overhead: Outcome<OverheadResult>
  readonly limiter: Outcome<LimiterFigures>
  readonly prompt: Outcome<Figures>
  readonly ledger: Outcome<LedgerFigures>
  readonly changes: Outcome<ReadonlyArray<ScenarioFigures>>
  readonly jobs: Outcome<ReadonlyArray<JobsScenario>>
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "-")
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "-")
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "-")

export interface Ratios {
  readonly service: ContenderResult
  readonly portkey: ContenderResult | undefined
  readonly floors: ReadonlyArray<ContenderResult>
  /** service rps / Portkey rps at 32 in flight: the median of the rounds, and each round's. */
  readonly throughputVsPortkey: { readonly median: number; readonly rounds: ReadonlyArray<number> } | undefined
  /** service mean latency minus each floor's at 1 in flight, ms (median of rounds, and each round's). */
  readonly addedMs: ReadonlyArray<{ readonly floor: string; readonly median: number; readonly rounds: ReadonlyArray<number> }>
}

const isService = (c: ContenderResult) => c.name.startsWith("policy-summarizer") && !c.reference

export const ratios = (o: OverheadResult): Ratios => {
  const service = o.contenders.find(isService)!
  const portkey = o.contenders.find((c) => c.name.startsWith("Portkey"))
  const floors = o.contenders.filter((c) => !c.name.startsWith("policy-summarizer") && c !== portkey && !c.reference)
  const perRound = (a: ContenderResult, b: ContenderResult, inflight: number, f: (x: number, y: number) => number, pick: "rps" | "meanMs") =>
    a.cells[inflight]!.runs.map((run, i) => f(run[pick], b.cells[inflight]!.runs[i]![pick]))
  return {
    service,
    portkey,
    floors,
    throughputVsPortkey: portkey === undefined ? undefined : (() => {
      const rounds = perRound(service, portkey, 32, (x, y) => x / y, "rps")
      return { median: service.cells[32]!.rps / portkey.cells[32]!.rps, rounds }
    })(),
    addedMs: floors.map((floor) => ({
      floor: floor.name,
      median: service.cells[1]!.meanMs - floor.cells[1]!.meanMs,
      rounds: perRound(service, floor, 1, (x, y) => x - y, "meanMs")
    }))
  }
}

const verdict = (ok: boolean) => (ok ? "met" : "MISSED")

const contenderRows = (o: OverheadResult) =>
  o.contenders.map((c) => ({
    name: `${c.name}${c.reference ? " (ref., 1 round)" : ""}`,
    cells: [
      f0(c.cells[1]!.rps), f2(c.cells[1]!.meanMs), f2(c.cells[1]!.p50Ms), f2(c.cells[1]!.p99Ms),
      f0(c.cells[32]!.rps), f1(c.cells[32]!.p50Ms), f1(c.cells[32]!.p99Ms),
      f2(c.cells[1]!.cpuMsPerRequest), f2(c.cells[32]!.cpuMsPerRequest),
      `${f0(c.peakMb)}${c.peakOf === "generator" ? " (gen.)" : ""}`,
      String(c.cells[1]!.errors + c.cells[32]!.errors)
    ]
  }))

const HEAD = ["req/s @1", "mean ms @1", "p50 ms @1", "p99 ms @1", "req/s @32", "p50 ms @32", "p99 ms @32", "CPU ms/req @1", "CPU ms/req @32", "peak MB", "errors"]

const targetLines = (o: OverheadResult): Array<string> => {
  const r = ratios(o)
  const lines: Array<string> = []
  if (r.throughputVsPortkey !== undefined) {
    lines.push(`throughput at 32 in flight, service / Portkey: ${f2(r.throughputVsPortkey.median)}x (rounds: ${r.throughputVsPortkey.rounds.map(f2).join(", ")}); target >= 1.5x: ${verdict(r.throughputVsPortkey.median >= 1.5)}`)
  } else {
    lines.push(`throughput against Portkey: not measured (${o.portkeyError})`)
  }
  for (const a of r.addedMs) {
    lines.push(`added mean latency at 1 in flight over ${a.floor}: ${f2(a.median)} ms (rounds: ${a.rounds.map(f2).join(", ")}); target <= 1 ms: ${verdict(a.median <= 1)}`)
  }
  lines.push(`service peak memory (VmHWM): ${f0(r.service.peakMb)} MB; target < 200 MB: ${verdict(r.service.peakMb < 200)}`)
  if (o.memory !== null) {
    lines.push(`service idle memory (VmRSS 2 s after start, no request yet): ${f0(o.memory.idleRssMb)} MB; target < 130 MB: ${verdict(o.memory.idleRssMb < 130)}`)
    lines.push(`service allocation per summary at 32 in flight (V8 sampling heap profiler, collected objects included, ${o.memory.requests} summaries): ${f0(o.memory.allocatedKbPerRequest)} KB; target < 250 KB: ${verdict(o.memory.allocatedKbPerRequest < 250)}; by place: ${o.memory.places.map((p) => `${p.place} ${f0(p.kbPerRequest)} KB`).join(", ")}`)
  } else {
    lines.push(`service idle memory and allocation per summary: not measured (${o.memoryError})`)
  }
  for (const floor of r.floors) {
    lines.push(`service throughput at 32 in flight / ${floor.name}: ${f2(r.service.cells[32]!.rps / floor.cells[32]!.rps)}`)
  }
  if (r.portkey !== undefined) {
    const cpuRatio = r.service.cells[32]!.cpuMsPerRequest / r.portkey.cells[32]!.cpuMsPerRequest
    const cpuRounds = r.service.cells[32]!.runs.map((run, i) => run.cpuMsPerRequest / r.portkey!.cells[32]!.runs[i]!.cpuMsPerRequest)
    lines.push(`CPU per request at 32 in flight, service / Portkey: ${f2(cpuRatio)} (${f2(r.service.cells[32]!.cpuMsPerRequest)} ms vs ${f2(r.portkey.cells[32]!.cpuMsPerRequest)} ms; rounds: ${cpuRounds.map(f2).join(", ")}; the least noisy comparison on a shared machine); target <= 1: ${verdict(cpuRatio <= 1)}`)
  }
  lines.push(...gatewayLines(o))
  const l = o.ledger
  lines.push(`ledger: ${l.rows} rows for ${l.upstreamCalls} upstream calls made by the service (${l.summaries} summaries answered): ${l.rows === l.upstreamCalls ? "every call has its row" : "MISMATCH"}`)
  lines.push(`upstream calls per request the service answered (summaries, structured by default; chat completions; streams): ${f2(l.upstreamCalls / l.summaries)} (1.00: no corrective call or retry; the emulator answers a valid structured summary)`)
  return lines
}

/** The OpenAI-compatible endpoint's targets: against Portkey, the SDK proxy floor and, streaming, the bare proxy. */
const gatewayLines = (o: OverheadResult): Array<string> => {
  const gateway = o.contenders.find((c) => c.name.includes("/v1/chat/completions"))
  if (gateway === undefined) return []
  const portkey = o.contenders.find((c) => c.name.startsWith("Portkey"))
  const sdkProxy = o.contenders.find((c) => c.name.includes("openai SDK proxy"))
  const lines: Array<string> = []
  if (portkey !== undefined) {
    const rounds = gateway.cells[32]!.runs.map((run, i) => run.rps / portkey.cells[32]!.runs[i]!.rps)
    const median = gateway.cells[32]!.rps / portkey.cells[32]!.rps
    lines.push(`gateway throughput at 32 in flight / Portkey: ${f2(median)}x (rounds: ${rounds.map(f2).join(", ")}); target >= 2x: ${verdict(median >= 2)}`)
  }
  if (sdkProxy !== undefined) {
    const rounds = gateway.cells[1]!.runs.map((run, i) => run.meanMs - sdkProxy.cells[1]!.runs[i]!.meanMs)
    const median = gateway.cells[1]!.meanMs - sdkProxy.cells[1]!.meanMs
    lines.push(`gateway added mean latency at 1 in flight over ${sdkProxy.name}: ${f2(median)} ms (rounds: ${rounds.map(f2).join(", ")}); target <= 1 ms: ${verdict(median <= 1)}`)
  }
  if (o.streaming !== null && o.streaming.length === 2) {
    const [bare, gw] = o.streaming as unknown as [typeof o.streaming[0] & { roundP99Ms: Array<number> }, typeof o.streaming[0] & { roundP99Ms: Array<number> }]
    const added = gw.p99Ms - bare.p99Ms
    lines.push(`gateway streaming: added time to first byte at p99 over the bare proxy: ${f2(added)} ms (p99 ${f2(gw.p99Ms)} vs ${f2(bare.p99Ms)} ms; rounds: ${gw.roundP99Ms.map((p, i) => f2(p - bare.roundP99Ms[i]!)).join(", ")}; p50 ${f2(gw.p50Ms)} vs ${f2(bare.p50Ms)} ms); target <= 1 ms: ${verdict(added <= 1)}`)
  } else if (o.streamingError !== null) {
    lines.push(`gateway streaming: not measured (${o.streamingError})`)
  }
  lines.push(`gateway peak memory (VmHWM of the service process, which also served the summaries): ${f0(gateway.peakMb)} MB; target < 200 MB: ${verdict(gateway.peakMb < 200)}`)
  return lines
}

/** A concern's profile time per request: the profiled run answered `rps` over the window (the profile's length less 250 ms each side). */
const perRequestUs = (o: OverheadResult, selfMs: number): number =>
  o.profileRun === null ? Number.NaN : (selfMs * 1000) / (o.profileRun.rps * ((o.timing.profileMs - 500) / 1000))

const textTable = (head: ReadonlyArray<string>, rows: ReadonlyArray<{ name: string; cells: ReadonlyArray<string> }>) => {
  const nameWidth = Math.max(10, ...rows.map((r) => r.name.length))
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r.cells[i]!.length)))
  const line = (name: string, cells: ReadonlyArray<string>) => [name.padEnd(nameWidth), ...cells.map((c, i) => c.padStart(widths[i]!))].join(" | ")
  return [line("", head), line("-".repeat(nameWidth), widths.map((w) => "-".repeat(w))), ...rows.map((r) => line(r.name, r.cells))].join("\n")
}

const mdTable = (head: ReadonlyArray<string>, rows: ReadonlyArray<{ name: string; cells: ReadonlyArray<string> }>) =>
  [`| | ${head.join(" | ")} |`, `|---|${head.map(() => "---:").join("|")}|`, ...rows.map((r) => `| ${r.name} | ${r.cells.join(" | ")} |`)].join("\n")

const limiterRows = (l: LimiterFigures) => ({
  head: ["calls", "took s", "sliding ideal s", "allowance used", "busiest second"],
  rows: l.pacings.map((p) => ({
    name: `pacing at 50/s, ${p.mode}`,
    cells: [String(p.requests), f2(p.completionMs / 1000), f2(p.slidingIdealMs / 1000), `${f1((100 * p.slidingIdealMs) / p.completionMs)} %`, `${p.busiestSecond} / 50`]
  }))
})

const ledgerRows = (l: LedgerFigures) => ({
  writes: {
    head: ["rows/s", "p50 ms", "p99 ms", "rows", "INSERT statements"],
    rows: l.writes.map((w) => ({ name: w.mode, cells: [f0(w.rowsPerSecond), f2(w.p50Ms), f2(w.p99Ms), String(w.rows), String(w.statements)] }))
  },
  totals: {
    head: ["rows in June", "generate s", "totals() from rollup ms", "same from base table ms"],
    rows: l.totals.map((t) => ({
      name: `${t.rows.toLocaleString("en")} ledger rows`,
      cells: [t.monthRows.toLocaleString("en"), f1(t.generateSeconds), f2(t.rollupMs), f1(t.baseTableMs)]
    }))
  }
})

/** The readable summary printed at the end of a run. */
export const summaryText = (all: AllResults): string => {
  const out: Array<string> = ["", "=".repeat(100), `SUMMARY (${all.quick ? "quick" : "full"} run, ${all.date}, ${f1(all.minutes)} min)`, "=".repeat(100)]
  const o = all.overhead
  if (o.ok) {
    out.push(`Overhead and throughput: every server first served ${o.value.timing.steadyMs / 1000} s at 32 in flight (steady state), then ${o.value.timing.rounds} interleaved round(s) of ${o.value.timing.durationMs / 1000} s per cell after ${o.value.timing.warmupMs / 1000} s warm-up; medians`)
    out.push(textTable(HEAD, contenderRows(o.value)), "", ...targetLines(o.value))
    if (o.value.profile !== null) {
      out.push("", `service CPU profile at 32 in flight (${f0(o.value.profileRun?.rps ?? Number.NaN)} req/s under the profiler), share of CPU samples by concern:`)
      for (const p of o.value.profile.concerns) out.push(`  ${f0(perRequestUs(o.value, p.selfMs)).padStart(6)} µs/req  ${f1(p.percent).padStart(5)} %  ${p.name}`)
    }
  } else out.push(`Overhead and throughput FAILED: ${o.error}`)
  const l = all.limiter
  if (l.ok) {
    const t = limiterRows(l.value)
    out.push("", "Rate limiter", textTable(t.head, t.rows), `own cost per call: ${f2(l.value.cost.sequentialUs)} us sequential, ${f2(l.value.cost.queuedUs)} us with 1,000 callers on 8 lanes`)
  } else out.push("", `Rate limiter FAILED: ${l.error}`)
  const p = all.prompt
  if (p.ok) {
    out.push("", `Prompt tokens over ${p.value.fixtures.length} fixtures: condensed change vs plain diff, median ratio ${f2(p.value.medianRatio)}, total reduction ${f1(p.value.reductionPercent)} % (change text alone: ${f1(p.value.textReductionPercent)} %)`)
  } else out.push("", `Prompt tokens FAILED: ${p.error}`)
  const g = all.ledger
  if (g.ok) {
    const t = ledgerRows(g.value)
    out.push("", "Ledger writes, 32 concurrent callers", textTable(t.writes.head, t.writes.rows), "", "Ledger totals() for one month by day", textTable(t.totals.head, t.totals.rows))
  } else out.push("", `Ledger FAILED: ${g.error}`)
  const j = all.jobs
  if (j.ok) out.push("", "Summary jobs, two replicas at 50 calls/s", textTable(JOBS_HEAD, jobsRows(j.value)))
  else out.push("", `Summary jobs FAILED: ${j.error}`)
  return out.join("\n")
}

const JOBS_HEAD = ["items", "ideal s", "calls span s", "rate used", "drain s", "ideal / drain", "busiest 1 s", "shortest span of 51 calls, ms", "upstream calls", "lost", "called twice", "running at kill", "calls a / b"]

const jobsRows = (rows: ReadonlyArray<JobsScenario>) =>
  rows.map((r) => ({ name: r.name, cells: [
    String(r.items),
    f1(r.idealMs / 1000),
    f2(r.callSpanMs / 1000),
    `${f1(r.rateUsed * 100)} %`,
    f2(r.drainMs / 1000),
    `${f1(r.drainRatio * 100)} %`,
    String(r.busiestSecond),
    String(r.tightestSpanMs),
    String(r.upstreamCalls),
    String(r.lost),
    String(r.calledTwice),
    r.inFlightAtKill === null ? "-" : String(r.inFlightAtKill),
    r.perReplica.join(" / ")
  ] }))

export const markdown = (all: AllResults, notes: ReadonlyArray<string>): string => {
  const m = all.machine
  const out: Array<string> = [
    "# Benchmark results",
    "",
    `- Date: ${all.date} (${all.quick ? "quick" : "full"} run, ${f1(all.minutes)} min)`,
    `- Command: \`${all.command}\``,
    `- Machine: ${m.cpus} CPUs (\`nproc\`), ${m.cpuModel}, ${f1(m.memoryGb)} GB memory, Node ${m.node}`,
    `- Load average (1/5/15 min) before: ${m.loadBefore}; after: ${m.loadAfter}`,
    ""
  ]
  const o = all.overhead
  out.push("## Overhead and throughput", "")
  if (o.ok) {
    const v = o.value
    out.push(
      `All contenders in one run against the same instant upstream (test/support/OpenRouterEmulator.ts in its own process, answering at once with usage and exact cost). ` +
        `Every server first serves ${v.timing.steadyMs / 1000} s at 32 in flight, not measured, so that each is compared at its steady state (JIT tiers and V8's heap sizing settle over thousands of requests: the service's CPU per summary falls by about 45 % over its first 10 s, Portkey's by about 50 %). ` +
        `Each cell: ${v.timing.rounds} interleaved round(s) of ${v.timing.durationMs / 1000} s after ${v.timing.warmupMs / 1000} s of warm-up, closed loop (undici Pool, N requests always in flight), load generator in a process of its own per measurement; medians over rounds. ` +
        `Floors and Portkey send the upstream the exact request body the service sends for ${v.fixture}. Peak memory is VmHWM of the server process (for the SDK floor, of the generator, which is the client). ` +
        `CPU ms/req is the CPU time (user + system, from /proc) the server process spent per request answered, warm-up included (for the SDK floor: the generator's, which does the SDK's work): on a shared machine it moves much less than req/s, because it does not count the time a process waits for a core.`,
      "",
      mdTable(HEAD, contenderRows(v)),
      "",
      "### Targets and ratios (same run)",
      "",
      ...targetLines(v).map((l) => `- ${l}`),
      ""
    )
    if (v.profile !== null) {
      out.push(
        "### Where the service's time goes (CPU profile)",
        "",
        `\`node --cpu-prof\` on the service (transpiled by esbuild file by file so functions keep their names) during ${v.timing.profileMs / 1000} s at 32 in flight (${f0(v.profileRun?.rps ?? Number.NaN)} req/s under the profiler, p50 ${f1(v.profileRun?.p50Ms ?? Number.NaN)} ms); ${f0(v.profile.sampledMs)} ms of samples in the window.`,
        "",
        "By concern (each sample to the innermost concern on its stack; see bench/profile.ts), per request as in issue 12's table:",
        "",
        mdTable(["µs/request", "ms", "%"], v.profile.concerns.map((p) => ({ name: p.name, cells: [f0(perRequestUs(v, p.selfMs)), f0(p.selfMs), f1(p.percent)] }))),
        "",
        "By package or project file (self time):",
        "",
        mdTable(["self ms", "%"], v.profile.places.map((p) => ({ name: p.name, cells: [f0(p.selfMs), f1(p.percent)] }))),
        "",
        "Top functions (self time):",
        "",
        mdTable(["where", "self ms", "%"], v.profile.functions.map((p) => ({ name: `\`${p.name}\``, cells: [p.where, f0(p.selfMs), f1(p.percent)] }))),
        ""
      )
    }
  } else out.push(`Failed: ${o.error}`, "")
  out.push("## Rate limiter (bench/ratelimiter.ts)", "")
  if (all.limiter.ok) {
    const t = limiterRows(all.limiter.value)
    out.push(mdTable(t.head, t.rows), "", `Own cost per call with no limit binding (${all.limiter.value.cost.calls} calls): ${f2(all.limiter.value.cost.sequentialUs)} us sequential on the fast path, ${f2(all.limiter.value.cost.queuedUs)} us with 1,000 callers queueing for 8 lanes.`, "")
  } else out.push(`Failed: ${all.limiter.error}`, "")
  out.push("## Prompt tokens (bench/prompt-tokens.ts)", "")
  if (all.prompt.ok) {
    const p = all.prompt.value
    out.push(`Over ${p.fixtures.length} fixtures, the prompt with the condensed change against the prompt with the plain unified diff: median ratio ${f2(p.medianRatio)}, total ${p.totalCondensedTokens} vs ${p.totalDiffTokens} tokens (${f1(p.reductionPercent)} % fewer); the change text alone ${f1(p.textReductionPercent)} % fewer (median ratio ${f2(p.medianTextRatio)}).`, "")
  } else out.push(`Failed: ${all.prompt.error}`, "")
  out.push("## Ledger (bench/ledger.ts)", "")
  if (all.ledger.ok) {
    const t = ledgerRows(all.ledger.value)
    out.push("`record` at 32 concurrent callers on the real PostgreSQL:", "", mdTable(t.writes.head, t.writes.rows), "", "`totals` for one month (June 2024) by day, rows spread over 2024 (median of 9 runs from the rollup, 3 from the base table):", "", mdTable(t.totals.head, t.totals.rows), "")
  } else out.push(`Failed: ${all.ledger.error}`, "")
  out.push("## Hostile changes (bench/change-load.ts)", "")
  if (all.changes.ok) {
    out.push("`npm start`'s bundle; `/health` probed one at a time while the requests are processed; the idle p99 is the same probe just before, on the same machine: what its own load costs. Targets with 4 requests at 2 MiB in flight: p99 under 50 ms, RSS under 400 MB.", "", changeTable(all.changes.value), "")
  } else out.push(`Failed: ${all.changes.error}`, "")
  out.push("## Summary jobs (bench/jobs.ts)", "")
  if (all.jobs.ok) {
    out.push("Two replicas (`npm start`'s bundle) sharing PostgreSQL and Redis, one job at a limit of 50 calls/s (LLM_RATE_LIMIT_MARGIN_MS at its default, 20), the emulator upstream (50 ms) in a process of its own. Ideal: (items - 50) / 50 s. Rate used: the ideal over the span from the first upstream call to the last; ideal / drain charges the whole drain, from submission (the items' insert) to the last result stored. The shortest span of 51 calls upstream is the busiest second's margin: at 1,000 ms or more, no second held more than 50. The emulator collects its garbage before each round, so its own pauses do not read as late calls. Targets: rate used at least 95 %, busiest second at most 50, 0 lost, 0 called twice without a kill (with one, at most the items running at the kill).", "", mdTable(JOBS_HEAD, jobsRows(all.jobs.value)), "")
  } else out.push(`Failed: ${all.jobs.error}`, "")
  out.push("## Notes", "", ...notes.map((n) => `- ${n}`), "")
  return out.join("\n")
}
