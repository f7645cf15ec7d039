import * as Worker from "@effect/platform/Worker"
import * as NodeWorker from "@effect/platform-node/NodeWorker"
import { Context, Data, Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { rename, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Worker as Thread } from "node:worker_threads"
import { Config } from "../Config.js"
import type { InvalidDiff } from "./Change.js"
import { type ChangeInput, type ChangeLayout, processChange, ProcessChange, type ProcessedChange } from "./ChangeWork.js"

/**
 * Parses and condenses changes. The server does it in a pool of worker threads, so that a large
 * or hostile change never stops the event loop (health checks, the rate limiter's dispatcher, the
 * ledger writer, every other request); `CHANGE_WORKERS=0` does it in-process.
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

class Pool extends Context.Tag("ChangeProcessor/Pool")<Pool, Worker.SerializedWorkerPool<ProcessChange>>() {}

const workers = (size: number) =>
  Layer.unwrapEffect(Effect.map(workerEntry, (entry) => {
    const spawn = (id: number) => new Thread(entry, { name: `change-worker-${id}`, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: WORKER_YOUNG_MB } })
    const pool = Worker.makePoolSerializedLayer(Pool, { size, concurrency: 1 }).pipe(Layer.provide(NodeWorker.layer(spawn)))
    return Layer.effect(
      ChangeProcessor,
      Effect.map(Pool, (pool) =>
        ChangeProcessor.of({
          // A worker that dies or a message that does not decode is a defect, not the caller's fault.
          process: (change, layout) => pool.executeEffect(new ProcessChange({ change, layout })).pipe(Effect.catchTags({ WorkerError: Effect.die, ParseError: Effect.die }))
        })
      )
    ).pipe(Layer.provide(pool))
  }))
