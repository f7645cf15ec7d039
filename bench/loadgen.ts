/**
 * The closed-loop load generator of `bench/run.ts`, one process per measurement so that its JIT,
 * heap and peak memory belong to that measurement alone. It keeps `inflight` requests going for
 * `warmupMs` (discarded) and then for `durationMs`, waits for the last answers, and prints one
 * JSON line (`LoadResult`).
 * Run: node --import tsx bench/loadgen.ts '<LoadSpec as JSON>'
 */
import { readFileSync } from "node:fs"
import OpenAI from "openai"
import { Pool } from "undici"
import { makeUndiciFetch } from "./undiciFetch.js"

export interface LoadSpec {
  /** http: POST `body` to `url`; sdk: `chat.completions.create(JSON.parse(body))` with baseURL `url`. */
  readonly kind: "http" | "sdk"
  readonly url: string
  readonly body: string
  readonly headers?: Readonly<Record<string, string>>
  /** A text every good answer contains (e.g. `"status":"summarized"`); others count as errors. */
  readonly expect?: string
  /** sdk only: the service's undici-based fetch, or the SDK's default (Node's global fetch). */
  readonly fetch?: "undici" | "default"
  readonly inflight: number
  readonly warmupMs: number
  readonly durationMs: number
}

export interface LoadResult {
  readonly requests: number
  readonly errors: number
  /** Requests answered during the warm-up (good or not), which the upstream also saw. */
  readonly warmupRequests: number
  readonly firstError: string | null
  readonly seconds: number
  readonly rps: number
  readonly meanMs: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** This generator's own peak resident memory (VmHWM), MB. */
  readonly selfPeakMb: number
  /** This generator's CPU time (user + system) per answered request during the measurement, ms. */
  readonly selfCpuMsPerRequest: number
}

/** CPU time (user + system) a process has used so far, ms, from /proc (clock ticks of 10 ms). */
export const cpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
}

export const peakMb = (pid: number | "self"): number => {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return match === null ? Number.NaN : Number(match[1]) / 1024
}

/** The element at rank ceil(p * n) of the sorted samples (nearest-rank percentile). */
export const percentile = (sorted: ArrayLike<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!

const makeCall = (spec: LoadSpec): (() => Promise<string>) => {
  if (spec.kind === "sdk") {
    const client = new OpenAI({
      apiKey: "sk-bench",
      baseURL: spec.url,
      maxRetries: 0,
      ...(spec.fetch === "default" ? {} : { fetch: makeUndiciFetch({ connections: spec.inflight + 4 }) })
    })
    const body = JSON.parse(spec.body) as OpenAI.ChatCompletionCreateParamsNonStreaming
    return async () => {
      const completion = await client.chat.completions.create(body)
      return completion.choices[0]?.message.content ?? ""
    }
  }
  const url = new URL(spec.url)
  const pool = new Pool(url.origin, { connections: spec.inflight + 4, keepAliveTimeout: 30_000 })
  const headers = { "content-type": "application/json", ...spec.headers }
  return async () => {
    const res = await pool.request({ path: url.pathname, method: "POST", headers, body: spec.body })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`)
    return text
  }
}

const drive = async (spec: LoadSpec, call: () => Promise<string>, ms: number) => {
  const samples: Array<number> = []
  let errors = 0
  let firstError: string | null = null
  const started = process.hrtime.bigint()
  const deadline = started + BigInt(ms) * 1_000_000n
  const worker = async () => {
    while (process.hrtime.bigint() < deadline) {
      const t0 = process.hrtime.bigint()
      try {
        const text = await call()
        if (spec.expect !== undefined && !text.includes(spec.expect)) {
          throw new Error(`answer without ${spec.expect}: ${text.slice(0, 300)}`)
        }
        samples.push(Number(process.hrtime.bigint() - t0) / 1e6)
      } catch (error) {
        errors++
        firstError ??= String(error)
      }
    }
  }
  await Promise.all(Array.from({ length: spec.inflight }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return { samples, errors, firstError, seconds }
}

const measure = async (spec: LoadSpec): Promise<LoadResult> => {
  const call = makeCall(spec)
  const warm = await drive(spec, call, spec.warmupMs)
  const cpuBefore = process.cpuUsage()
  const { errors, firstError, samples, seconds } = await drive(spec, call, spec.durationMs)
  const cpu = process.cpuUsage(cpuBefore)
  const sorted = Float64Array.from(samples).sort()
  const total = samples.reduce((sum, s) => sum + s, 0)
  return {
    requests: samples.length,
    errors,
    warmupRequests: warm.samples.length + warm.errors,
    firstError,
    seconds,
    rps: samples.length / seconds,
    meanMs: samples.length === 0 ? Number.NaN : total / samples.length,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    selfPeakMb: peakMb("self"),
    selfCpuMsPerRequest: (cpu.user + cpu.system) / 1000 / (samples.length + errors)
  }
}

if (process.argv[1]?.endsWith("loadgen.ts")) {
  const result = await measure(JSON.parse(process.argv[2] ?? "{}") as LoadSpec)
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(0)
}
