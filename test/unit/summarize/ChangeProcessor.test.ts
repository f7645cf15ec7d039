import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import { Config } from "../../../src/Config.js"
import { ChangeProcessor, INLINE_MAX_CHARS } from "../../../src/summarize/ChangeProcessor.js"
import { processChange } from "../../../src/summarize/ChangeWork.js"

const threads = ChangeProcessor.layer.pipe(
  Layer.provide(Config.layer),
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["CHANGE_WORKERS", "2"]]))))
)

const layout = { budgetTokens: 12_000, maxParts: 8, largeChange: "split", grounding: true } as const

// Unchanged text around the change makes it large enough to go to a worker thread.
const context = `## Scope\n\n${"These terms apply to every service we offer. ".repeat(Math.ceil(INLINE_MAX_CHARS / 40))}\n\n`

const change = (i: number, around = context) => ({
  before: `# Terms\n\n${around}## Data\n\nWe keep your data for ${i} days.\n`,
  after: `# Terms\n\n${around}## Data\n\nWe keep your data for ${i + 1} days and share it with partner ${i}.\n`
})

describe("ChangeProcessor in worker threads", () => {
  it.scoped("answers as the in-process processing does, and refuses an unreadable diff as InvalidDiff", () =>
    Effect.gen(function*() {
      const processor = yield* ChangeProcessor
      expect(yield* processor.process(change(30), layout)).toEqual(Either.getOrThrow(processChange(change(30), layout)))
      // A small change is processed on the calling thread, with the same answer.
      expect(yield* processor.process(change(31, ""), layout)).toEqual(Either.getOrThrow(processChange(change(31, ""), layout)))
      const unreadable = { diff: `not a diff\n${context}` }
      const refused = yield* Effect.flip(processor.process(unreadable, layout))
      expect(refused._tag).toBe("InvalidDiff")
      expect(refused.message).toBe(Either.flip(processChange(unreadable, layout)).pipe(Either.getOrThrow).message)
    }).pipe(Effect.provide(threads)), 30_000)

  it.scoped("gives each of many changes in flight at once its own answer", () =>
    Effect.gen(function*() {
      const processor = yield* ChangeProcessor
      const answers = yield* Effect.forEach(Array.from({ length: 64 }, (_, i) => i), (i) => processor.process(change(i), layout), { concurrency: "unbounded" })
      answers.forEach((answer, i) => expect(answer.rawDiff).toContain(`share it with partner ${i}.`))
    }).pipe(Effect.provide(threads)), 30_000)
})
