/**
 * What the trace spans cost: `npx tsx bench/spans.ts [--quick]`.
 * One summary's span set (summarize → attempt → limiter wait, ledger commit) around effects that
 * do almost nothing, so the figure is the spans' own cost per summary:
 *   bare      the same effects without the wrappers;
 *   off       the wrappers with the tracer switched off (no OTEL_EXPORTER_OTLP_ENDPOINT: production's default);
 *   native    the wrappers with Effect's built-in tracer (what a test or a library gets, nothing exported);
 *   exported  the wrappers with the OTLP exporter (protobuf) posting to a local receiver that answers 200.
 * Variants run in interleaved rounds (each round runs all four, in rotating order); the median of
 * the rounds is reported, with each round's figure so the spread shows.
 */
import { ConfigProvider, Effect, Layer, ManagedRuntime, Ref } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { performance } from "node:perf_hooks"
import { pathToFileURL } from "node:url"
import { Config, load } from "../src/Config.js"
import * as Spans from "../src/telemetry/Spans.js"
import { Tracing } from "../src/telemetry/Tracing.js"

const summary = { status: "summarized" as const, attempts: 1, cached: false, fallbackReason: null }

/** One summary's path without spans: an attempt that waits, calls, and commits its row. */
const bare = (counter: Ref.Ref<number>) =>
  Ref.update(counter, (n) => n + 1).pipe(
    Effect.zipRight(Effect.void),
    Effect.zipRight(Effect.void),
    Effect.as(summary)
  )

const traced = (counter: Ref.Ref<number>) =>
  Spans.limiterWait((entered) => entered(Ref.update(counter, (n) => n + 1))).pipe(
    Effect.zipRight(Effect.void.pipe(Spans.ledgerCommit("00000000-0000-0000-0000-000000000000"))),
    Spans.attempt(counter, "openai/gpt-4o-mini", "summary"),
    Effect.as(summary),
    Spans.summarize
  )

const receiver = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly close: () => void }>((resume) => {
    const server = createServer((req, res) => {
      req.resume()
      req.on("end", () => res.writeHead(200).end())
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, close: () => server.close() }))
    })
  }),
  ({ close }) => Effect.sync(close)
)

type Variant = "bare" | "off" | "native" | "exported"

export interface SpansResult {
  readonly summaries: number
  readonly rounds: number
  /** Median µs per summary, and each round's. */
  readonly perSummaryUs: Readonly<Record<Variant, { readonly median: number; readonly rounds: ReadonlyArray<number> }>>
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

export const program = (quick: boolean) =>
  Effect.scoped(Effect.gen(function*() {
    const summaries = quick ? 10_000 : 50_000
    const rounds = quick ? 3 : 5
    const sink = yield* receiver
    const runtimes: Record<Variant, ManagedRuntime.ManagedRuntime<never, never>> = {
      bare: ManagedRuntime.make(Layer.setTracerEnabled(false)),
      off: ManagedRuntime.make(Layer.setTracerEnabled(false)),
      native: ManagedRuntime.make(Layer.empty),
      exported: ManagedRuntime.make(exporterLayer(sink.url))
    }
    yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all(Object.values(runtimes).map((r) => r.dispose()))))
    const bodies: Record<Variant, (counter: Ref.Ref<number>) => Effect.Effect<typeof summary>> = { bare, off: traced, native: traced, exported: traced }
    const variants: ReadonlyArray<Variant> = ["bare", "off", "native", "exported"]
    const once = (variant: Variant, n: number) =>
      Effect.promise(() =>
        runtimes[variant].runPromise(Effect.gen(function*() {
          const counter = yield* Ref.make(0)
          const body = bodies[variant](counter)
          const t0 = performance.now()
          for (let i = 0; i < n; i++) yield* body
          return ((performance.now() - t0) * 1_000) / n
        }))
      )
    // Warm-up: the JIT and the exporter's first batch.
    for (const v of variants) yield* once(v, Math.min(summaries, 20_000))
    const figures: Record<Variant, Array<number>> = { bare: [], off: [], native: [], exported: [] }
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + r) % variants.length]!
        figures[v].push(yield* once(v, summaries))
      }
    }
    const summarized = (v: Variant) => ({ median: median(figures[v]), rounds: figures[v] })
    const perSummaryUs = { bare: summarized("bare"), off: summarized("off"), native: summarized("native"), exported: summarized("exported") }
    return { summaries, rounds, perSummaryUs } satisfies SpansResult
  }))

/** The service's own `Tracing` layer, configured as an operator would: only the endpoint set. */
const exporterLayer = (url: string) =>
  Tracing.pipe(Layer.provide(Layer.effect(
    Config,
    load.pipe(Effect.orDie, Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OTEL_EXPORTER_OTLP_ENDPOINT", url]]))))
  )))

export const table = (result: SpansResult) => {
  const base = result.perSummaryUs.bare.median
  const row = (v: Variant) => {
    const f = result.perSummaryUs[v]
    return `${v.padEnd(9)} | ${f.median.toFixed(2).padStart(8)} µs | ${(f.median - base).toFixed(2).padStart(8)} µs | ${f.rounds.map((x) => x.toFixed(2)).join(", ")}`
  }
  return [
    `Spans per summary (summarize, 1 attempt, limiter wait, ledger commit): ${result.summaries} summaries × ${result.rounds} interleaved rounds`,
    "variant   | median      | over bare   | rounds (µs per summary)",
    ...(["bare", "off", "native", "exported"] as const).map(row)
  ].join("\n")
}

export const run = (quick: boolean) => Effect.runPromise(program(quick))

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run(process.argv.includes("--quick"))
  console.log(table(result))
}
