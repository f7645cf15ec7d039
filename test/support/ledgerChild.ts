/**
 * A ledger process for the crash test: the real database and UsageRepo layers from the
 * environment; on "record N" from stdin it records N rows and prints "recorded N" once every one
 * of them has resumed. The parent kills it with SIGKILL whenever it likes.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Stream } from "effect"
import * as readline from "node:readline"
import { Config } from "../../src/Config.js"
import * as Database from "../../src/db/Database.js"
import { UsageRepo } from "../../src/usage/UsageRepo.js"
import { usageRepoWith } from "./UsageRepoLayer.js"
import { usageRow } from "./UsageRows.js"

const Live = usageRepoWith({ replayEvery: "200 millis", insertTimeout: "2 seconds" }).pipe(
  Layer.provideMerge(Database.layer),
  Layer.provideMerge(Config.layer)
)

const lines = Stream.async<string>((emit) => {
  const rl = readline.createInterface({ input: process.stdin })
  rl.on("line", (line) => emit.single(line))
  rl.on("close", () => emit.end())
})

const program = Effect.gen(function*() {
  const repo = yield* UsageRepo
  process.stdout.write(`ready ${yield* repo.spoolDepth}\n`)
  yield* Stream.runForEach(lines, (line) =>
    Effect.gen(function*() {
      const n = Number(/^record (\d+)$/.exec(line)?.[1] ?? 0)
      yield* Effect.forEach(Array.from({ length: n }, () => usageRow()), repo.record, { concurrency: 16 })
      process.stdout.write(`recorded ${n} depth ${yield* repo.spoolDepth}\n`)
    }))
  yield* Effect.never
})

NodeRuntime.runMain(program.pipe(Effect.provide(Live)))
