/**
 * The LlmClient on its own: `npx tsx bench/client.ts [--quick]`. Calls per second and latency at 1
 * and 32 in flight, the real OpenRouter client (SDK + undici fetch) behind the real rate limiter
 * and circuit breaker, against a direct SDK call to the same instant upstream. The ledger is in
 * memory here so the figure is the client's own cost (the service benchmark includes the ledger).
 */
import { Context, Effect, Exit, Layer, Scope } from "effect"
import OpenAI from "openai"
import { performance } from "node:perf_hooks"
import { Pool } from "undici"
import { pathToFileURL } from "node:url"
import { CircuitBreaker } from "../src/llm/CircuitBreaker.js"
import { LlmClient } from "../src/llm/LlmClient.js"
import { openRouter } from "../test/support/OpenRouterLayer.js"
import { RateLimiter } from "../src/llm/RateLimiter.js"
import { makeUndiciFetch } from "./undiciFetch.js"
import { memoryLedger, staticPricing, unlimitedBudget } from "../test/support/InMemory.js"
import { configLayer } from "../test/support/TestDatabase.js"
import { API_KEY, startUpstream } from "./contenders.js"
import { percentile } from "./loadgen.js"

const messages = [{ role: "user" as const, content: "Summarize: we now keep your data for 90 days instead of 30." }]

interface Figures {
  readonly inflight: number
  readonly rps: number
  /** Main-process CPU (user + system) per call, µs: the least noisy figure on a shared machine. */
  readonly cpuUs: number
  readonly p50Ms: number
  readonly p99Ms: number
}

/** Keeps `inflight` calls going for `durationMs` and times each. */
const measure = async (inflight: number, durationMs: number, call: () => Promise<unknown>): Promise<Figures> => {
  const samples: Array<number> = []
  const end = performance.now() + durationMs
  const began = performance.now()
  const cpu = process.cpuUsage()
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (performance.now() < end) {
      const t = performance.now()
      await call()
      samples.push(performance.now() - t)
    }
  }))
  const elapsed = performance.now() - began
  const used = process.cpuUsage(cpu)
  samples.sort((a, b) => a - b)
  return { inflight, rps: samples.length / (elapsed / 1000), cpuUs: (used.user + used.system) / samples.length, p50Ms: percentile(samples, 0.5), p99Ms: percentile(samples, 0.99) }
}

export const run = async (quick: boolean) => {
  const upstream = await startUpstream()
  const durationMs = quick ? 1_500 : 6_000
  try {
    const sdk = new OpenAI({ apiKey: API_KEY, baseURL: upstream.baseUrl, maxRetries: 0, fetch: makeUndiciFetch({ connections: 64 }) })
    const direct = () => sdk.chat.completions.create({ model: "openai/gpt-4o-mini", messages, max_tokens: 100 })
    // Held open for the whole run: the client's connection pool closes with it.
    const scope = Effect.runSync(Scope.make())
    const client = await Effect.runPromise(Effect.gen(function*() {
      const ledger = yield* memoryLedger
      const layer = LlmClient.layer.pipe(
        Layer.provide([openRouter, RateLimiter.layer, CircuitBreaker.layer, ledger.layer, unlimitedBudget, staticPricing]),
        Layer.provide(configLayer({
          OPENROUTER_API_KEY: API_KEY,
          OPENROUTER_BASE_URL: upstream.baseUrl,
          LLM_RATE_LIMIT_REQUESTS: "1000000",
          LLM_RATE_LIMIT_WINDOW_MS: "1000",
          LLM_MAX_CONCURRENCY: "64",
          LOG_LEVEL: "warning"
        }))
      )
      return Context.get(yield* Layer.buildWithScope(layer, scope), LlmClient)
    }))
    const viaClient = () => Effect.runPromise(client.generateCompletion({ messages, maxTokens: 100 }))
    const rows: Array<{ readonly inflight: number; readonly sdk: Figures; readonly client: Figures }> = []
    for (const inflight of [1, 32]) {
      await measure(inflight, 500, direct)
      await measure(inflight, 500, viaClient)
      // Interleaved twice; the better of each pair, since noise on this machine only slows things down.
      const [s1, c1, s2, c2] = [
        await measure(inflight, durationMs, direct),
        await measure(inflight, durationMs, viaClient),
        await measure(inflight, durationMs, direct),
        await measure(inflight, durationMs, viaClient)
      ]
      rows.push({ inflight, sdk: s1!.rps > s2!.rps ? s1! : s2!, client: c1!.rps > c2!.rps ? c1! : c2! })
    }
    await Effect.runPromise(Scope.close(scope, Exit.void))
    return rows.map(({ inflight, sdk, client }) => ({
      inflight,
      sdkRps: Math.round(sdk.rps),
      clientRps: Math.round(client.rps),
      rpsRatio: +(client.rps / sdk.rps).toFixed(2),
      sdkCpuUs: Math.round(sdk.cpuUs),
      clientCpuUs: Math.round(client.cpuUs),
      cpuRatio: +(client.cpuUs / sdk.cpuUs).toFixed(2),
      sdkP50Ms: +sdk.p50Ms.toFixed(3),
      clientP50Ms: +client.p50Ms.toFixed(3),
      addedP50Ms: +(client.p50Ms - sdk.p50Ms).toFixed(3),
      sdkP99Ms: +sdk.p99Ms.toFixed(3),
      clientP99Ms: +client.p99Ms.toFixed(3)
    }))
  } finally {
    await upstream.stop()
  }
}

/**
 * The completion call alone, three ways, interleaved in one run (`--transports`): the SDK as the
 * client used it (undici fetch, `.withResponse()`, an abort signal), the SDK without those per-call
 * extras, and a prebuilt undici `Pool` request whose JSON is parsed once.
 */
export const transports = async (quick: boolean) => {
  const upstream = await startUpstream()
  const durationMs = quick ? 1_500 : 5_000
  const body = { model: "openai/gpt-4o-mini", messages, max_tokens: 100 }
  const origin = new URL(upstream.baseUrl)
  const pool = new Pool(origin.origin, { connections: 64, keepAliveTimeout: 30_000 })
  try {
    const sdk = new OpenAI({ apiKey: API_KEY, baseURL: upstream.baseUrl, maxRetries: 0, fetch: makeUndiciFetch({ connections: 64 }) })
    const lean = new OpenAI({ apiKey: API_KEY, baseURL: upstream.baseUrl, maxRetries: 0, logLevel: "off", fetch: makeUndiciFetch({ connections: 64 }) })
    const headers = { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" }
    const path = `${origin.pathname.replace(/\/$/, "")}/chat/completions`
    const candidates: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
      ["sdk as used (withResponse, signal)", () => sdk.chat.completions.create(body, { signal: new AbortController().signal }).withResponse()],
      ["sdk lean (no withResponse, no signal)", () => lean.chat.completions.create(body)],
      ["undici Pool request", async () => {
        const res = await pool.request({ path, method: "POST", headers, body: JSON.stringify(body), signal: new AbortController().signal })
        return JSON.parse(await res.body.text())
      }]
    ]
    const best = new Map<string, Figures>()
    for (const inflight of [1, 32]) {
      for (const [, call] of candidates) await measure(inflight, 500, call)
      for (let round = 0; round < 2; round++) {
        for (const [name, call] of candidates) {
          const figures = await measure(inflight, durationMs, call)
          const key = `${name}@${inflight}`
          if ((best.get(key)?.rps ?? 0) < figures.rps) best.set(key, figures)
        }
      }
    }
    return [...best].map(([key, f]) => ({ candidate: key, rps: Math.round(f.rps), cpuUs: Math.round(f.cpuUs), p50Ms: +f.p50Ms.toFixed(3) }))
  } finally {
    await pool.close()
    await upstream.stop()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const quick = process.argv.includes("--quick")
  ;(process.argv.includes("--transports") ? transports(quick) : run(quick)).then((rows) => console.table(rows))
}
