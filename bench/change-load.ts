/**
 * Hostile changes against the running service (`npm start`'s bundle): how long `GET /health`
 * waits while they are processed, the service's resident memory, and what reaches the model.
 *   reversed-16k-words:   one request, `before` = 16,000 distinct words on one line, `after` reversed;
 *   diff-146k:       one `diff` body with one long line reversed;
 *   reversed-2mib-x4: four such requests at once, each at MAX_INPUT_BYTES (2 MiB);
 *   identical-edits: a diff of 200,000 identical one-line edits: upstream calls and prompt tokens.
 * Each scenario has a time cap: past it, the service is killed and the figures so far are kept.
 * Run: npx tsx bench/change-load.ts [--quick] [--only=diff-146k,...]
 * A harness around a child process and sockets, so plain async code, like the other benches.
 */
import { readFileSync } from "node:fs"
import * as http from "node:http"
import { pathToFileURL } from "node:url"
import { type Contender, type ServiceDatabase, serviceDatabase, service, startUpstream, type Upstream } from "./contenders.js"
import { percentile } from "./loadgen.js"

const MAX_INPUT_BYTES = 2_097_152

interface Reply {
  readonly status: number
  readonly body: string
  readonly ms: number
}

const send = (port: number, method: string, path: string, body?: string, timeoutMs = 300_000) =>
  new Promise<Reply>((resolve) => {
    const started = performance.now()
    const req = http.request({ host: "127.0.0.1", port, method, path, agent: false, timeout: timeoutMs, headers: body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - started }))
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", () => resolve({ status: 0, body: "", ms: performance.now() - started }))
    req.end(body)
  })

const rssMb = (pid: number): number => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024
  } catch {
    return Number.NaN
  }
}

/** `count` distinct words on one line, and the same words reversed. */
export const reversedWords = (count: number) => {
  const words = Array.from({ length: count }, (_, i) => `w${i.toString(36)}`)
  return { before: `${words.join(" ")}\n`, after: `${words.reverse().join(" ")}\n` }
}

/** The largest reversed-words request whose JSON body fits in `bytes`. */
export const reversedBody = (bytes: number): string => {
  let low = 1
  let high = bytes
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    if (JSON.stringify(reversedWords(mid)).length <= bytes) low = mid
    else high = mid - 1
  }
  return JSON.stringify(reversedWords(low))
}

/** A unified diff of `lines` paragraphs, one of them (`count` words) reversed. */
export const reversedLineDiff = (count: number) => {
  const { after, before } = reversedWords(count)
  return JSON.stringify({ diff: `--- a/policy.md\n+++ b/policy.md\n@@ -1,2 +1,2 @@\n # Terms\n-${before.trimEnd()}\n+${after.trimEnd()}\n` })
}

/** A unified diff of `count` identical one-line edits (`-1` / `+2`), in one hunk. */
export const identicalEdits = (count: number) =>
  JSON.stringify({ diff: `--- a/list.txt\n+++ b/list.txt\n@@ -1,${count} +1,${count} @@\n${"-1\n+2\n".repeat(count)}` })

export interface ScenarioFigures {
  readonly name: string
  readonly requests: number
  readonly bodyBytes: number
  readonly finished: boolean
  readonly seconds: number
  readonly statuses: string
  /** /health p99 before the requests, on the same machine at the same time: what the load of the machine alone costs. */
  readonly idleP99Ms: number
  readonly healthProbes: number
  readonly healthP50Ms: number
  readonly healthP99Ms: number
  readonly healthMaxMs: number
  readonly peakRssMb: number
  readonly upstreamCalls: number
  readonly promptTokens: number | null
}

const scenario = async (
  name: string,
  body: string,
  requests: number,
  capMs: number,
  upstream: Upstream,
  db: ServiceDatabase
): Promise<ScenarioFigures> => {
  const contender: Contender = await service(upstream, db, { name })
  const child = contender.child!
  const port = Number(new URL(contender.target.url).port)
  await upstream.take()
  const idle: Array<number> = []
  for (const until = performance.now() + 3_000; performance.now() < until;) {
    idle.push((await send(port, "GET", "/health", undefined, capMs)).ms)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const started = performance.now()
  const probes: Array<number> = []
  let peak = rssMb(child.pid)
  let running = true
  const sampler = setInterval(() => {
    const now = rssMb(child.pid)
    if (!Number.isNaN(now)) peak = Math.max(peak, now)
  }, 50)
  // One probe at a time on a fresh connection: a stalled event loop shows as one long probe.
  const prober = (async () => {
    while (running) {
      const reply = await send(port, "GET", "/health", undefined, capMs)
      probes.push(reply.ms)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  const work = Promise.all(Array.from({ length: requests }, () => send(port, "POST", "/v1/summaries", body, capMs)))
  const outcome = await Promise.race([work, new Promise<null>((resolve) => setTimeout(() => resolve(null), capMs))])
  const seconds = (performance.now() - started) / 1000
  running = false
  if (outcome === null) child.process.kill("SIGKILL")
  await prober
  clearInterval(sampler)
  const calls = await upstream.take()
  await contender.stop()
  const sorted = [...probes].sort((a, b) => a - b)
  const tokens = outcome?.map((reply) => {
    try {
      return (JSON.parse(reply.body) as { usage: { promptTokens: number } | null }).usage?.promptTokens ?? 0
    } catch {
      return 0
    }
  })
  const statuses = outcome === null ? `none within ${capMs / 1000} s` : outcome.map((r) => {
    if (r.status !== 200) return String(r.status)
    const parsed = JSON.parse(r.body) as { status: string; fallbackReason: string | null }
    return parsed.status === "fallback" ? `fallback:${parsed.fallbackReason}` : parsed.status
  }).join(",")
  const figures: ScenarioFigures = {
    name,
    requests,
    bodyBytes: Buffer.byteLength(body),
    finished: outcome !== null,
    seconds,
    statuses,
    idleP99Ms: percentile([...idle].sort((a, b) => a - b), 0.99),
    healthProbes: probes.length,
    healthP50Ms: percentile(sorted, 0.5),
    healthP99Ms: percentile(sorted, 0.99),
    healthMaxMs: sorted.at(-1) ?? Number.NaN,
    peakRssMb: peak,
    upstreamCalls: calls,
    promptTokens: tokens === undefined ? null : tokens.reduce((a, b) => a + b, 0)
  }
  console.log(JSON.stringify(figures))
  return figures
}

const SCENARIOS: ReadonlyArray<{ readonly name: string; readonly body: () => string; readonly requests: number }> = [
  { name: "reversed-16k-words", body: () => JSON.stringify(reversedWords(16_000)), requests: 1 },
  { name: "diff-146k", body: () => reversedLineDiff(14_900), requests: 1 },
  { name: "reversed-2mib-x4", body: () => reversedBody(MAX_INPUT_BYTES - 64), requests: 4 },
  { name: "identical-edits", body: () => identicalEdits(200_000), requests: 1 }
]

export const run = async (quick: boolean, only?: ReadonlyArray<string>): Promise<ReadonlyArray<ScenarioFigures>> => {
  const upstream = await startUpstream()
  const db = await serviceDatabase()
  const cap = quick ? 60_000 : 120_000
  try {
    const results: Array<ScenarioFigures> = []
    for (const s of SCENARIOS) {
      if (only === undefined || only.includes(s.name)) results.push(await scenario(s.name, s.body(), s.requests, cap, upstream, db))
    }
    return results
  } finally {
    await upstream.stop()
    await db.drop()
  }
}

export const table = (results: ReadonlyArray<ScenarioFigures>): string =>
  [
    "| scenario | requests | body KB | finished | s | idle /health p99 ms | /health p50 ms | p99 ms | max ms | peak RSS MB | upstream calls | prompt tokens | answers |",
    "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...results.map((r) =>
      `| ${r.name} | ${r.requests} | ${(r.bodyBytes / 1024).toFixed(0)} | ${r.finished ? "yes" : "no"} | ${r.seconds.toFixed(1)} | ${r.idleP99Ms.toFixed(1)} | ${r.healthP50Ms.toFixed(1)} | ${r.healthP99Ms.toFixed(1)} | ${r.healthMaxMs.toFixed(0)} | ${r.peakRssMb.toFixed(0)} | ${r.upstreamCalls} | ${r.promptTokens ?? "-"} | ${r.statuses} |`
    )
  ].join("\n")

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",")
  const results = await run(process.argv.includes("--quick"), only)
  console.log(table(results))
  process.exit(0)
}
