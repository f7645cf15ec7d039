import { Context, Data, Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { rename, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Worker as Thread } from "node:worker_threads"
import { Config } from "../Config.js"
import { InvalidDiff } from "./Change.js"
import { type ChangeInput, type ChangeLayout, type ChangeReply, type ChangeRequest, processChange, type ProcessedChange } from "./ChangeWork.js"

/**
 * Parses and condenses changes. The server does it in a pool of worker threads, so that a large
 * or hostile change never stops the event loop (health checks, the rate limiter's dispatcher, the
 * ledger writer, every other request), except small ones (`INLINE_MAX_CHARS`); `CHANGE_WORKERS=0`
 * does it all in-process.
 */
export class ChangeProcessor extends Context.Tag("ChangeProcessor")<ChangeProcessor, {
  readonly process: (change: ChangeInput, layout: ChangeLayout) => Effect.Effect<ProcessedChange, InvalidDiff>
}>() {
  /** On the calling thread: for unit tests and `CHANGE_WORKERS=0`. */
  static readonly inProcess = Layer.succeed(ChangeProcessor, ChangeProcessor.of({ process: (change, layout) => Effect.suspend(() => processChange(change, layout)) }))

  /** `CHANGE_WORKERS` worker threads, or in-process when it is 0. */
  static readonly layer = Layer.unwrapEffect(Effect.map(Config, (config) => config.summary.changeWorkers === 0 ? ChangeProcessor.inProcess : workers(config.summary.changeWorkers)))
}

/** The worker entry could not be prepared (from source: bundling it failed). */
export class WorkerEntryUnavailable extends Data.TaggedError("WorkerEntryUnavailable")<{ readonly message: string }> {}

// `npm run build` bundles the worker beside main.js and cli.js, where this module then lives too.
const BUNDLED_ENTRY = new URL("./change-worker.js", import.meta.url)
const SOURCE_ENTRY = new URL("./ChangeWorker.ts", import.meta.url)
// A worker past this heap dies alone (the request gets a 500) instead of taking the process down;
// a small young generation keeps the memory a worker holds between large changes low.
const WORKER_HEAP_MB = 512
const WORKER_YOUNG_MB = 16

let bundledFromSource: string | undefined

/**
 * From source (tsx, vitest), worker threads cannot load TypeScript: the entry is bundled with
 * esbuild into one self-contained file under the temporary directory, named by its content, once
 * per process.
 */
const bundleSource = Effect.tryPromise({
  try: async () => {
    if (bundledFromSource !== undefined) return bundledFromSource
    const esbuild = await import("esbuild")
    const result = await esbuild.build({
      entryPoints: [fileURLToPath(SOURCE_ENTRY)],
      bundle: true,
      platform: "node",
      format: "esm",
      write: false,
      logLevel: "silent",
      // Bundled CommonJS dependencies may call require for Node's own modules.
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }
    })
    const code = result.outputFiles[0]!.contents
    const file = Path.join(tmpdir(), `policy-summarizer-change-worker-${createHash("sha256").update(code).digest("hex").slice(0, 16)}.mjs`)
    if (!existsSync(file)) {
      const partial = `${file}.${process.pid}.tmp`
      await writeFile(partial, code, { mode: 0o600 })
      await rename(partial, file)
    }
    bundledFromSource = file
    return file
  },
  catch: (cause) => new WorkerEntryUnavailable({ message: `cannot bundle ${fileURLToPath(SOURCE_ENTRY)}: ${String(cause)}` })
})

const workerEntry: Effect.Effect<string, WorkerEntryUnavailable> = Effect.suspend(() =>
  existsSync(BUNDLED_ENTRY) ? Effect.succeed(fileURLToPath(BUNDLED_ENTRY)) : bundleSource
)

/** One worker thread and the requests it has not answered yet, by id. */
interface Lane {
  readonly thread: Thread
  readonly waiting: Map<number, (reply: ChangeReply | { readonly _tag: "Died"; readonly message: string }) => void>
}

/**
 * `size` threads, started with the first request; each request goes to the one with the fewest
 * waiting. A thread that dies (past its heap limit, say) fails only the requests it held, as
 * defects (the caller's input is not at fault), and is replaced; closing terminates them all.
 */
const makeThreads = (entry: string, size: number) => {
  let nextId = 0
  let closing = false
  const lanes: Array<Lane> = []
  const spawn = (index: number): Lane => {
    const thread = new Thread(entry, {
      name: `change-worker-${index}`,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: WORKER_YOUNG_MB }
    })
    const lane: Lane = { thread, waiting: new Map() }
    thread.on("message", (reply: ChangeReply) => {
      const resume = lane.waiting.get(reply.id)
      lane.waiting.delete(reply.id)
      resume?.(reply)
    })
    // An 'error' (uncaught, or out of memory) is followed by 'exit', where the requests are failed.
    let cause = ""
    thread.on("error", (error) => {
      cause = `: ${error.message}`
    })
    thread.once("exit", (code) => {
      for (const resume of lane.waiting.values()) resume({ _tag: "Died", message: `the change worker exited (code ${code})${cause}` })
      lane.waiting.clear()
      if (!closing) lanes[index] = spawn(index)
    })
    return lane
  }
  // Started with the first change, not at start: a thread holds tens of MB that an idle server need not.
  const leastBusy = () => {
    if (lanes.length === 0) for (let i = 0; i < size; i++) lanes.push(spawn(i))
    return lanes.reduce((best, lane) => (lane.waiting.size < best.waiting.size ? lane : best))
  }

  const process = (change: ChangeInput, layout: ChangeLayout) =>
    Effect.async<ProcessedChange, InvalidDiff>((resume) => {
      const lane = leastBusy()
      const id = nextId++
      lane.waiting.set(id, (reply) => {
        switch (reply._tag) {
          case "Processed":
            return resume(Effect.succeed(reply.value))
          case "InvalidDiff":
            return resume(Effect.fail(new InvalidDiff({ message: reply.message })))
          default:
            return resume(Effect.die(new Error(reply.message)))
        }
      })
      lane.thread.postMessage({ id, change, layout } satisfies ChangeRequest)
      // An interrupted caller's reply is dropped when it comes.
      return Effect.sync(() => lane.waiting.delete(id))
    })

  const close = Effect.promise(() => {
    closing = true
    return Promise.all(lanes.map((lane) => lane.thread.terminate()))
  })
  return { process, close }
}

/**
 * Changes up to this many characters are processed on the calling thread: the hop to a worker and
 * back costs more than their work, and even a hostile one (every word moved) takes a few
 * milliseconds there, about what handling any request costs.
 */
export const INLINE_MAX_CHARS = 4_096

const sizeOf = (change: ChangeInput) => ("diff" in change ? change.diff.length : change.before.length + change.after.length)

const workers = (size: number) =>
  Layer.scoped(ChangeProcessor, Effect.gen(function*() {
    const entry = yield* workerEntry
    const threads = yield* Effect.acquireRelease(Effect.sync(() => makeThreads(entry, size)), (threads) => threads.close)
    return ChangeProcessor.of({
      process: (change, layout) => (sizeOf(change) <= INLINE_MAX_CHARS ? Effect.suspend(() => processChange(change, layout)) : threads.process(change, layout))
    })
  }))
