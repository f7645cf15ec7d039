import { FileSystem } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Data, Effect, Layer, Logger, LogLevel } from "effect"
import { Config, load } from "./Config.js"
import { SummaryServices } from "./Services.js"
import type { Summary } from "./summarize/Summary.js"
import type { SummaryInput } from "./summarize/Summarizer.js"
import { Summarizer } from "./summarize/Summarizer.js"
import { validate } from "./summarize/SummariesHttp.js"

const usage = `Usage: npm run summarize -- (--before OLD --after NEW | --diff PATCH) [--model ID] [--json]

Prints a plain-language summary of the change with its model, tokens and cost.
Exit codes: 0 summarized, 2 fallback (the reason and the raw diff are printed), 1 bad usage.`

class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

interface Options {
  readonly before?: string
  readonly after?: string
  readonly diff?: string
  readonly model?: string
  readonly json: boolean
}

const parseArgs = (args: ReadonlyArray<string>): Effect.Effect<Options, UsageError> => {
  const options: { -readonly [K in keyof Options]?: Options[K] } = { json: false }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--json") options.json = true
    else if (["--before", "--after", "--diff", "--model"].includes(arg) && args[i + 1] !== undefined) {
      options[arg.slice(2) as "before" | "after" | "diff" | "model"] = args[++i]!
    } else return Effect.fail(new UsageError({ message: `Unknown or incomplete argument: ${arg}` }))
  }
  return Effect.succeed(options as Options)
}

const readInput = (options: Options) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const read = (path: string) =>
      fs.readFileString(path).pipe(Effect.mapError((e) => new UsageError({ message: `Cannot read ${path}: ${e.message}` })))
    const config = yield* Config
    const body = {
      ...(options.diff !== undefined ? { diff: yield* read(options.diff) } : {}),
      ...(options.before !== undefined ? { before: yield* read(options.before) } : {}),
      ...(options.after !== undefined ? { after: yield* read(options.after) } : {}),
      ...(options.model !== undefined ? { model: options.model } : {})
    }
    return yield* validate(body, config).pipe(
      Effect.mapError((e) => new UsageError({ message: `${e.field}: ${e.message}` }))
    )
  })

const printText = (summary: Summary) =>
  summary.status === "summarized"
    ? Console.log([
      summary.summary,
      "",
      `model: ${summary.model ?? "none"}${summary.provider ? ` (${summary.provider})` : ""}${summary.cached ? ", from cache" : ""}`,
      summary.usage === null
        ? "no model call"
        : `tokens: ${summary.usage.promptTokens} prompt + ${summary.usage.completionTokens} completion = ${summary.usage.totalTokens}; cost: ${summary.usage.costUsd === null ? "unknown" : `$${summary.usage.costUsd}`}`,
      `attempts: ${summary.attempts} upstream call${summary.attempts === 1 ? "" : "s"}${summary.cached ? " (answer from the cache: nothing spent now)" : ""}, ${summary.latencyMs} ms`
    ].join("\n"))
    : Console.log(`No summary (fallback: ${summary.fallbackReason}: ${summary.fallbackDetail}). The raw change follows.\n\n${summary.rawDiff}`)

const summarize = (input: SummaryInput, json: boolean) =>
  Effect.gen(function*() {
    const summarizer = yield* Summarizer
    const summary = yield* summarizer.summarize(input).pipe(
      Effect.catchTags({
        InvalidDiff: (e) => Effect.fail(new UsageError({ message: `diff: ${e.message}` })),
        RateLimitQueueFull: () => Effect.fail(new UsageError({ message: "The upstream queue is full; retry later" }))
      })
    )
    yield* json ? Console.log(JSON.stringify(summary, null, 2)) : printText(summary)
    return summary.status === "summarized" ? 0 : 2
  })

const main = Effect.gen(function*() {
  const options = yield* parseArgs(process.argv.slice(2))
  const config = Layer.succeed(Config, yield* load)
  const input = yield* readInput(options).pipe(Effect.provide(config))
  return yield* summarize(input, options.json).pipe(Effect.provide(SummaryServices.pipe(Layer.provide(config))))
}).pipe(
  Effect.catchTags({
    UsageError: (e) => Console.error(`${e.message}\n\n${usage}`).pipe(Effect.as(1)),
    ConfigInvalid: (e) => Console.error(e.message).pipe(Effect.as(1))
  }),
  Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
  // The terminal is for the summary: only warnings and errors are logged, to stderr.
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withLeveledConsole(Logger.logfmtLogger))),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(main, { disablePrettyLogger: true })
