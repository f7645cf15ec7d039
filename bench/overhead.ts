/**
 * Overhead and throughput, side by side in one run against one instant upstream (the emulator in a
 * process of its own): the openai SDK calling it directly, a bare proxy, an SDK proxy, the Portkey
 * gateway and this service's `POST /v1/summaries`, each at 1 and at 32 in flight, in interleaved
 * rounds (medians reported), then a check that the ledger holds one row per upstream call.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { connect as heapSampler } from "./allocation.js"
import {
  bareProxy,
  type Contender,
  minimalEffect,
  portkey,
  sdkDirect,
  sdkProxy,
  service,
  serviceDatabase,
  type ServiceDatabase,
  startUpstream,
  summaryRequest,
  type Upstream
} from "./contenders.js"
import { cpuMs, type LoadResult, type LoadSpec, peakMb } from "./loadgen.js"
import { freePort, start } from "./processes.js"
import { buildForProfile } from "./profileBuild.js"
import { durationUs, type ProfileSummary, summarize } from "./profile.js"
import * as Streaming from "./streaming.js"

export const INFLIGHT = [1, 32] as const

export interface Timing {
  readonly rounds: number
  /**
   * Once per server before the rounds, at 32 in flight, not measured: JIT tiers and V8's heap sizing
   * take thousands of requests to settle (measured here: the service's CPU per summary falls from
   * 3.3 to 1.8 ms over its first 10 s at 32 in flight, Portkey's from 2.9 to 1.5 ms), and a server
   * that runs for days is compared at its steady state.
   */
  readonly steadyMs: number
  /** Before each measurement, not measured. */
  readonly warmupMs: number
  readonly durationMs: number
  readonly profileMs: number
}

export const timing = (quick: boolean): Timing =>
  quick
    ? { rounds: 1, steadyMs: 4_000, warmupMs: 500, durationMs: 2_000, profileMs: 3_000 }
    : { rounds: 3, steadyMs: 12_000, warmupMs: 2_000, durationMs: 6_000, profileMs: 10_000 }

/** One measurement, with the CPU time the server (or, for the SDK floor, the generator) spent per request. */
export interface Measured extends LoadResult {
  readonly cpuMsPerRequest: number
}

/** The median over rounds of each figure (each figure on its own). */
export interface Cell {
  readonly cpuMsPerRequest: number
  readonly rps: number
  readonly meanMs: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly requests: number
  readonly errors: number
  readonly runs: ReadonlyArray<Measured>
}

export interface ContenderResult {
  readonly name: string
  readonly cells: Readonly<Record<number, Cell>>
  /** VmHWM of the server process, or of the generator when there is none (the SDK floor). */
  readonly peakMb: number
  readonly peakOf: "server" | "generator"
  /** Measured in round 1 only, for reference, and left out of the ratios. */
  readonly reference: boolean
}

export interface OverheadResult {
  readonly timing: Timing
  readonly fixture: string
  readonly contenders: ReadonlyArray<ContenderResult>
  readonly portkeyError: string | null
  readonly ledger: { readonly rows: number; readonly upstreamCalls: number; readonly summaries: number }
  readonly profile: ProfileSummary | null
  readonly profileRun: Measured | null
  /** Time to first byte of a stream through the bare proxy and through the gateway. */
  readonly streaming: Awaited<ReturnType<typeof Streaming.run>> | null
  readonly streamingError: string | null
  /** The service's memory: resident after start with no request yet, and bytes allocated per summary at 32 in flight. */
  readonly memory: MemoryFigures | null
  readonly memoryError: string | null
}

export interface MemoryFigures {
  readonly idleRssMb: number
  readonly allocatedKbPerRequest: number
  readonly requests: number
  /** Where it was allocated: the ten largest places (a package, a project file, Node), KB per summary. */
  readonly places: ReadonlyArray<{ readonly place: string; readonly kbPerRequest: number }>
}

/** The text-format reference: the same service with `SUMMARY_FORMAT=text`, measured in round 1 only. */
export const TEXT_FORMAT_NAME = "policy-summarizer POST /v1/summaries (SUMMARY_FORMAT=text)"

export const GATEWAY_NAME = "policy-summarizer POST /v1/chat/completions"

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const cellOf = (runs: ReadonlyArray<Measured>): Cell => ({
  cpuMsPerRequest: median(runs.map((r) => r.cpuMsPerRequest)),
  rps: median(runs.map((r) => r.rps)),
  meanMs: median(runs.map((r) => r.meanMs)),
  p50Ms: median(runs.map((r) => r.p50Ms)),
  p99Ms: median(runs.map((r) => r.p99Ms)),
  requests: runs.reduce((sum, r) => sum + r.requests, 0),
  errors: runs.reduce((sum, r) => sum + r.errors, 0),
  runs
})

const load = async (contender: Contender, inflight: number, t: Timing, durationMs = t.durationMs): Promise<Measured> => {
  const spec: LoadSpec = { ...contender.target, inflight, warmupMs: t.warmupMs, durationMs }
  const server = contender.child?.pid
  const cpuBefore = server === undefined ? 0 : cpuMs(server)
  const generator = start(`load generator for ${contender.name}`, ["--import", "tsx", "bench/loadgen.ts", JSON.stringify(spec)])
  const loaded = (await generator.nextLine()) as LoadResult
  await generator.exited
  // The server's CPU covers warm-up and measurement alike, so it is shared over both.
  const result: Measured = {
    ...loaded,
    cpuMsPerRequest: server === undefined
      ? loaded.selfCpuMsPerRequest
      : (cpuMs(server) - cpuBefore) / (loaded.requests + loaded.errors + loaded.warmupRequests)
  }
  if (result.errors > 0) console.warn(`  ${contender.name} at ${inflight}: ${result.errors} errors, first: ${result.firstError}`)
  return result
}

const log = (message: string) => console.log(`[overhead] ${message}`)

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN) / 1024

/**
 * A fresh instance of the service: its resident memory two seconds after start, before any
 * request, then (after a warm-up) the bytes it allocates per summary at 32 in flight, from V8's
 * sampling heap profiler over the inspector, collected objects included.
 */
const measureMemory = async (upstream: Upstream, db: ServiceDatabase, t: Timing) => {
  const inspectorPort = await freePort()
  const dataDir = mkdtempSync(Path.join(tmpdir(), "bench-memory-"))
  const instance = await service(upstream, db, { nodeFlags: [`--inspect=127.0.0.1:${inspectorPort}`], dataDir, name: "policy-summarizer (memory)" })
  try {
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    const idleRssMb = rssMb(instance.child!.pid)
    const warm = await load(instance, 32, { ...t, warmupMs: 0 }, t.steadyMs)
    const sampler = await heapSampler(inspectorPort)
    await sampler.start()
    const run = await load(instance, 32, { ...t, warmupMs: 0 })
    const allocation = await sampler.stop()
    sampler.close()
    const requests = run.requests + run.errors
    const perRequestKb = (bytes: number) => bytes / 1024 / requests
    return {
      figures: {
        idleRssMb,
        allocatedKbPerRequest: perRequestKb(allocation.bytes),
        requests,
        places: allocation.places.slice(0, 10).map(([place, bytes]) => ({ place, kbPerRequest: perRequestKb(bytes) }))
      },
      summaries: warm.requests + warm.errors + requests
    }
  } finally {
    await instance.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** The service once more, under `--cpu-prof`, at 32 in flight; self time over the measured window only. */
const profileService = async (upstream: Upstream, db: ServiceDatabase, t: Timing) => {
  const dir = "/tmp/prof"
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const profiled = await service(upstream, db, {
    nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
    entry: await buildForProfile()
  })
  const run = await load(profiled, 32, { ...t, warmupMs: t.steadyMs }, t.profileMs)
  const finished = performance.now()
  await profiled.stop()
  const exited = performance.now()
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread.
  const file = readdirSync(dir).find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir} after the service exited`)
  const path = Path.join(dir, file)
  // The profile ends at exit; the measured window is the profileMs before the load generator finished.
  const end = durationUs(path) - (exited - finished) * 1000
  const margin = 250_000
  return { run, profile: summarize(path, [end - t.profileMs * 1000 + margin, end - margin]) }
}

const measureInterleaved = async (
  upstream: Upstream,
  contenders: ReadonlyArray<Contender>,
  references: ReadonlyArray<Contender>,
  isService: (c: Contender) => boolean,
  t: Timing
) => {
  const runs = new Map<Contender, Map<number, Array<Measured>>>()
  for (const c of [...contenders, ...references]) runs.set(c, new Map(INFLIGHT.map((n) => [n, []])))
  let serviceCalls = 0
  let summaries = 0
  // Servers only: a client-side contender runs in a fresh generator process each time.
  for (const c of [...contenders, ...references].filter((c) => c.child !== null)) {
    await upstream.take()
    const warmed = await load(c, 32, { ...t, warmupMs: 0 }, t.steadyMs)
    const calls = await upstream.take()
    if (isService(c)) {
      serviceCalls += calls
      summaries += warmed.requests + warmed.errors + warmed.warmupRequests
    }
    log(`steady state: ${c.name} served ${(t.steadyMs / 1000).toFixed(0)} s at 32 in flight first (${warmed.rps.toFixed(0)} req/s, cpu ${warmed.cpuMsPerRequest.toFixed(2)} ms/req)`)
  }
  for (let round = 0; round < t.rounds; round++) {
    // Each round starts with a different contender, so that none always runs right after the same one.
    const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]!)
    if (round === 0) order.push(...references)
    for (const inflight of INFLIGHT) {
      for (const c of order) {
        await upstream.take()
        const result = await load(c, inflight, t)
        const calls = await upstream.take()
        if (isService(c)) {
          serviceCalls += calls
          summaries += result.requests + result.errors + result.warmupRequests
        }
        runs.get(c)!.get(inflight)!.push(result)
        log(`round ${round + 1}/${t.rounds} ${String(inflight).padStart(2)} in flight  ${c.name.padEnd(40)} ${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  cpu ${result.cpuMsPerRequest.toFixed(2)} ms/req`)
      }
    }
  }
  return { runs, serviceCalls, summaries }
}

export const run = async (quick: boolean, forceProfile: boolean): Promise<OverheadResult> => {
  const t = timing(quick)
  const upstream = await startUpstream()
  const db = await serviceDatabase()
  const started: Array<Contender> = []
  try {
    log(`upstream at ${upstream.baseUrl}; starting the service on database ${new URL(db.url).pathname.slice(1)}`)
    const svc = await service(upstream, db)
    started.push(svc)
    // One summary first: it must succeed, and its upstream request becomes every floor's request body,
    // so that all contenders send the upstream the same bytes.
    const primed = await fetch(svc.target.url, { method: "POST", headers: { "content-type": "application/json" }, body: summaryRequest() })
    const primedText = await primed.text()
    if (!primedText.includes("\"status\":\"summarized\"")) throw new Error(`the service did not summarize: ${primed.status} ${primedText.slice(0, 500)}`)
    const body = JSON.stringify(await upstream.sample())
    let serviceCalls = await upstream.take()
    let summaries = 1

    started.push(await bareProxy(upstream, body), await sdkProxy(upstream, body), await minimalEffect(upstream, body, db.url))
    let portkeyError: string | null = null
    try {
      started.push(await portkey(upstream, body))
    } catch (error) {
      portkeyError = String(error)
      log(`Portkey could not run: ${portkeyError}`)
    }
    const floor = sdkDirect(upstream, body, "undici")
    // The gateway runs in the service's process: the same server, another route, the same request body as the floors.
    const gateway: Contender = {
      name: GATEWAY_NAME,
      target: { kind: "http", url: svc.target.url.replace("/v1/summaries", "/v1/chat/completions"), body, expect: "\"choices\"" },
      child: svc.child,
      stop: async () => {}
    }
    const contenders = [floor, ...started.slice(1), svc, gateway]
    const textDataDir = mkdtempSync(Path.join(tmpdir(), "bench-text-"))
    const textFormat = await service(upstream, db, { dataDir: textDataDir, name: TEXT_FORMAT_NAME, env: { SUMMARY_FORMAT: "text" } })
    started.push(textFormat)
    const references = [sdkDirect(upstream, body, "default"), textFormat]
    const measured = await measureInterleaved(upstream, contenders, references, (c) => c === svc || c === gateway || c === textFormat, t)
    let streaming: OverheadResult["streaming"] = null
    let streamingError: string | null = null
    try {
      log("streaming: time to first byte at 1 in flight, bare proxy vs the gateway")
      await upstream.take()
      const streamBody = JSON.stringify({ ...JSON.parse(body), stream: true })
      streaming = await Streaming.run([
        // The bare proxy forwards the caller's Authorization to upstream, as the throughput runs do.
        { name: "bare node:http + undici proxy (streaming)", url: started[1]!.target.url, headers: started[1]!.target.headers ?? {} },
        { name: `${GATEWAY_NAME} (streaming)`, url: gateway.target.url, headers: {} }
      ], streamBody, t.rounds, quick ? 300 : 1_000)
      // Both targets made the same number of streams: half of the upstream calls are the service's, one per stream.
      const streamed = await upstream.take() / 2
      serviceCalls += streamed
      summaries += streamed
      for (const s of streaming) log(`${s.name}: TTFB p50 ${s.p50Ms.toFixed(2)} ms  p99 ${s.p99Ms.toFixed(2)} ms  (${s.requests} streams, ${s.errors} errors)`)
    } catch (error) {
      streamingError = String(error)
      log(`streaming could not run: ${streamingError}`)
    }
    serviceCalls += measured.serviceCalls
    summaries += measured.summaries

    const results: Array<ContenderResult> = [...contenders, ...references].map((c) => {
      const byInflight = measured.runs.get(c)!
      return {
        name: c.name,
        cells: Object.fromEntries(INFLIGHT.map((n) => [n, cellOf(byInflight.get(n)!)])),
        peakMb: c.child === null
          ? Math.max(...[...byInflight.values()].flat().map((r) => r.selfPeakMb))
          : peakMb(c.child.pid),
        peakOf: c.child === null ? "generator" : "server",
        reference: references.includes(c)
      } satisfies ContenderResult
    })
    for (const c of started) await c.stop()
    started.length = 0
    rmSync(textDataDir, { recursive: true, force: true })

    let memory: MemoryFigures | null = null
    let memoryError: string | null = null
    try {
      log("memory: idle RSS of a fresh instance, then bytes allocated per summary at 32 in flight (sampling heap profiler)")
      await upstream.take()
      const measuredMemory = await measureMemory(upstream, db, t)
      serviceCalls += await upstream.take()
      summaries += measuredMemory.summaries
      memory = measuredMemory.figures
      log(`memory: idle ${memory.idleRssMb.toFixed(0)} MB, ${memory.allocatedKbPerRequest.toFixed(0)} KB allocated per summary over ${memory.requests} summaries`)
    } catch (error) {
      memoryError = String(error)
      log(`memory could not be measured: ${memoryError}`)
    }

    const service32 = results.find((r) => r.name === svc.name)!.cells[32]!.rps
    const portkey32 = results.find((r) => r.name.startsWith("Portkey"))?.cells[32]!.rps
    const service1 = results.find((r) => r.name === svc.name)!.cells[1]!.meanMs
    const sdk1 = results.find((r) => r.name === floor.name)!.cells[1]!.meanMs
    const servicePeak = results.find((r) => r.name === svc.name)!.peakMb
    const missed = (portkey32 !== undefined && service32 < 1.5 * portkey32) || service1 - sdk1 > 1 || servicePeak >= 200
    let profile: ProfileSummary | null = null
    let profileRun: Measured | null = null
    if (missed || forceProfile) {
      log(`profiling the service at 32 in flight for ${t.profileMs / 1000} s (${missed ? "a target was missed" : "--profile"})`)
      await upstream.take()
      const profiled = await profileService(upstream, db, t)
      serviceCalls += await upstream.take()
      summaries += profiled.run.requests + profiled.run.errors + profiled.run.warmupRequests
      profile = profiled.profile
      profileRun = profiled.run
    }
    const rows = await db.rows()
    return {
      timing: t,
      fixture: "07-google-privacy-policy diff.patch",
      contenders: results,
      portkeyError,
      ledger: { rows, upstreamCalls: serviceCalls, summaries },
      profile,
      profileRun,
      streaming,
      streamingError,
      memory,
      memoryError
    }
  } finally {
    for (const c of started) await c.stop()
    await upstream.stop()
    await db.drop()
  }
}
