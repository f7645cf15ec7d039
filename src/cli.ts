import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Data, Effect, Layer, Logger, LogLevel } from "effect"
import { parseArgs } from "node:util"
import { Config, load } from "./Config.js"
import { CliServices } from "./Services.js"
import { Tracing } from "./telemetry/Tracing.js"
import type { Summary } from "./summarize/Summary.js"
import type { SummaryInput } from "./summarize/Summarizer.js"
import { Summarizer } from "./summarize/Summarizer.js"
import { validate } from "./summarize/SummariesHttp.js"

const usage = `Usage: npm run summarize -- --before OLD --after NEW [--model ID] [--json]
       npm run summarize -- --diff PATCH [--model ID] [--json]

Summarizes a change to a policy document in plain language, with its model, tokens and exact cost,
recorded in the same ledger as the server's. Settings come from the environment, as for the server.
With no DATABASE_URL it uses the running server's embedded database under DATA_DIR (or opens it
itself when no server runs).

Options:
  --before FILE   the old version of the document (with --after)
  --after FILE    the new version of the document (with --before)
  --diff FILE     a unified diff of the change, instead of --before and --after
  --model ID      one of OPENROUTER_ALLOWED_MODELS (default OPENROUTER_DEFAULT_MODEL)
  --json          print the summary as the HTTP API returns it
  -h, --help      print this help

Exit codes: 0 summarized; 2 no summary, a fallback (its reason and the raw diff are printed);
1 bad usage or could not run (settings, database).`

/** A mistake in the command line: one line, exit code 1. */
class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

const exitCodes = { summarized: 0, failed: 1, usage: 1, fallback: 2 } as const

const seeHelp = "; see npm run summarize -- --help"

interface Options {
  readonly before?: string
  readonly after?: string
  readonly diff?: string
  readonly model?: string
  readonly json: boolean
  readonly help: boolean
}

/** node:util's messages, said in this command's words. */
const parseError = (error: NodeJS.ErrnoException & { message: string }): string => {
  const option = /'(-[^' ]+)/.exec(error.message)?.[1]
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `Unknown option ${option ?? error.message}`
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(error.message) ? `${option} needs a value` : `${option} takes no value`
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `Unexpected argument ${/'([^']*)'/.exec(error.message)?.[1] ?? ""}: files are given with --before/--after or --diff`
    default:
      return error.message
  }
}

const parse = (args: ReadonlyArray<string>): Effect.Effect<Options, UsageError> =>
  Effect.try({
    try: () =>
      parseArgs({
        args: [...args],
        strict: true,
        allowPositionals: false,
        options: {
          before: { type: "string" },
          after: { type: "string" },
          diff: { type: "string" },
          model: { type: "string" },
          json: { type: "boolean", default: false },
          help: { type: "boolean", short: "h", default: false }
        }
      }).values,
    catch: (error) => new UsageError({ message: parseError(error as NodeJS.ErrnoException) + seeHelp })
  }).pipe(Effect.flatMap((values) => {
    const options: Options = { ...values, json: values.json ?? false, help: values.help ?? false }
    if (options.help) return Effect.succeed(options)
    const fail = (message: string) => Effect.fail(new UsageError({ message: message + seeHelp }))
    if (options.diff !== undefined && (options.before !== undefined || options.after !== undefined)) {
      return fail("--diff cannot be combined with --before or --after")
    }
    if (options.before !== undefined && options.after === undefined) return fail("--before needs --after")
    if (options.after !== undefined && options.before === undefined) return fail("--after needs --before")
    return Effect.succeed(options)
  }))

const readInput = (options: Options) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const read = (flag: string, path: string) =>
      fs.readFileString(path).pipe(Effect.mapError((e) =>
        new UsageError({
          message: `Cannot read the ${flag} file ${path}: ${
            e._tag === "SystemError" && e.reason === "NotFound" ? "no such file" : e.message
          }`
        })
      ))
    const config = yield* Config
    const body = {
      ...(options.diff !== undefined ? { diff: yield* read("--diff", options.diff) } : {}),
      ...(options.before !== undefined ? { before: yield* read("--before", options.before) } : {}),
      ...(options.after !== undefined ? { after: yield* read("--after", options.after) } : {}),
      ...(options.model !== undefined ? { model: options.model } : {})
    }
    return yield* validate(body, config).pipe(
      // The shared validation names the HTTP fields; here they are flags.
      Effect.mapError((e) => new UsageError({ message: e.message.replace(/`(diff|before|after|model)`/g, "--$1") }))
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
        InvalidDiff: (e) => Effect.fail(new UsageError({ message: `--diff: ${e.message}` })),
        RateLimitQueueFull: () => Effect.fail(new UsageError({ message: "The upstream queue is full; retry later" }))
      })
    )
    yield* json ? Console.log(JSON.stringify(summary, null, 2)) : printText(summary)
    return summary.status === "summarized" ? exitCodes.summarized : exitCodes.fallback
  })

const main = Effect.gen(function*() {
  const args = process.argv.slice(2)
  if (args.length === 0) return yield* Console.error(usage).pipe(Effect.as(exitCodes.usage))
  const options = yield* parse(args)
  if (options.help) return yield* Console.log(usage).pipe(Effect.as(exitCodes.summarized))
  const config = Layer.succeed(Config, yield* load)
  const input = yield* readInput(options).pipe(Effect.provide(config))
  return yield* summarize(input, options.json).pipe(Effect.provide(CliServices.pipe(Layer.provide(Tracing), Layer.provide(config))))
}).pipe(
  Effect.catchTags({
    UsageError: (e) => Console.error(e.message).pipe(Effect.as(exitCodes.usage)),
    ConfigInvalid: (e) => Console.error(e.message).pipe(Effect.as(exitCodes.failed)),
    DatabaseStartError: (e) => Console.error(e.message).pipe(Effect.as(exitCodes.failed))
  }),
  Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
  // The terminal is for the summary: only warnings and errors are logged, to stderr.
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withLeveledConsole(Logger.logfmtLogger))),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(main, { disablePrettyLogger: true })
