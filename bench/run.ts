/**
 * `npm run bench [-- --quick] [-- --profile] [-- --only=overhead,limiter,prompt,ledger,changes]`
 *
 * Every benchmark of the project in one run, then one summary table, written to bench/RESULTS.md
 * (a quick run writes /tmp/policy-summarizer-bench-quick.md instead, so that a smoke run never
 * replaces the real figures). Sections, in this order:
 *   overhead: this service against the openai SDK, a bare proxy, an SDK proxy and the Portkey
 *             gateway, at 1 and 32 in flight (bench/overhead.ts); a CPU profile of the service
 *             when it misses a target or with --profile;
 *   limiter:  bench/ratelimiter.ts;  prompt: bench/prompt-tokens.ts;
 *   ledger:   bench/ledger.ts (10M rows in full mode: about 4 minutes on its own; 100k in quick);
 *   changes:  bench/change-load.ts (hostile changes: /health latency, memory, upstream calls);
 *   jobs:     bench/jobs.ts (a summary job across two replicas at 50 calls/s, steady and with one SIGKILLed).
 * This is a harness around child processes and sockets, so it is plain async code; the Effect
 * benchmarks it folds in are run with Effect.runPromise.
 */
import { Effect } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as ChangeLoad from "./change-load.js"
import * as JobsBench from "./jobs.js"
import * as LedgerBench from "./ledger.js"
import * as Overhead from "./overhead.js"
import * as PromptTokens from "./prompt-tokens.js"
import * as RateLimiterBench from "./ratelimiter.js"
import { type AllResults, markdown, type Outcome, summaryText } from "./report.js"

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const only = argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",")
const wanted = (section: string) => only === undefined || only.includes(section)

const RESULTS = new URL("RESULTS.md", import.meta.url).pathname
const QUICK_RESULTS = "/tmp/policy-summarizer-bench-quick.md"
/** Everything below this line in RESULTS.md is written by hand and kept across runs. */
const KEEP_MARKER = "<!-- analysis below: written by hand, kept across runs -->"

const loadAverage = () => Os.loadavg().map((n) => n.toFixed(2)).join(" / ")

const cpuModel = () =>
  /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? Os.cpus()[0]?.model ?? "unknown"

const section = async <A>(name: string, body: () => Promise<A>): Promise<Outcome<A>> => {
  if (!wanted(name)) return { ok: false, error: "not run (--only)" }
  console.log(`\n### ${name}`)
  try {
    return { ok: true, value: await body() }
  } catch (error) {
    console.error(`${name} failed:`, error)
    return { ok: false, error: error instanceof Error ? error.message : String(error) }
  }
}

const NOTES = [
  "The machine is shared: other processes (test suites of other sessions) run at the same time, and the load generator, the upstream and the server under test share its cores. Absolute figures move from run to run by tens of percent; the ratios between contenders measured in the same interleaved rounds are steadier, and each round's ratio is listed beside the median so the spread is visible.",
  "At 32 in flight every figure is bounded by the cores: the generator, the upstream emulator and the server compete for them. The SDK floor at 32 in flight is bounded by the SDK's own client-side cost in the generator, so it is not an upper bound for the proxies.",
  "The service does more per request than the floors and Portkey: it parses and condenses the diff, builds the prompt, goes through budget guard, circuit breaker and rate limiter, and commits one ledger row per upstream call to PostgreSQL before it answers (group commit).",
  "Latency includes the client: for the SDK floor, the SDK's own request building and parsing; for the others, one extra local HTTP hop."
]

const started = Date.now()
const loadBefore = loadAverage()
const overhead = await section("overhead", () => Overhead.run(quick, argv.includes("--profile")))
const limiter = await section("limiter", () => RateLimiterBench.run(quick))
const prompt = await section("prompt", async () => PromptTokens.run())
const ledger = await section("ledger", () => Effect.runPromise(LedgerBench.run(quick)))
const changes = await section("changes", () => ChangeLoad.run(quick))
const jobs = await section("jobs", () => JobsBench.run(quick))

const all: AllResults = {
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`,
  quick,
  minutes: (Date.now() - started) / 60_000,
  machine: {
    cpus: Os.availableParallelism(),
    cpuModel: cpuModel(),
    memoryGb: Os.totalmem() / 1024 ** 3,
    node: process.version,
    loadBefore,
    loadAfter: loadAverage()
  },
  overhead,
  limiter,
  prompt,
  ledger,
  changes,
  jobs
}

console.log(summaryText(all))
const target = quick || only !== undefined ? QUICK_RESULTS : RESULTS
const kept = existsSync(RESULTS) && target === RESULTS ? readFileSync(RESULTS, "utf8").split(KEEP_MARKER)[1] : undefined
writeFileSync(target, `${markdown(all, NOTES)}\n${KEEP_MARKER}${kept ?? "\n"}`)
console.log(`\nwritten to ${target}`)
const failed = [overhead, limiter, prompt, ledger, changes, jobs].some((o) => !o.ok && o.error !== "not run (--only)")
// Pools and timers of the folded-in benchmarks must not keep the process alive.
process.exit(failed ? 1 : 0)
