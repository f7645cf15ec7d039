import { describe, expect, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { COSMETIC_SUMMARY } from "../../../src/summarize/Summarizer.js"
import { fixture } from "../../unit/summarize/fixtures.js"
import { App, appLayer, liveBlock, summarize } from "./support.js"

const userText = (body: any): string => body.messages.find((m: any) => m.role === "user").content

const policy = (whatWeDo: ReadonlyArray<string>, whatWeNeverDo: ReadonlyArray<string>) =>
  `# Privacy\n\n## What we do\n\n${whatWeDo.join("\n\n")}\n\n## What we never do\n\n${whatWeNeverDo.join("\n\n")}\n`

/** Milliseconds `GET /health` takes. */
const healthMs = (url: string) =>
  Effect.promise(async () => {
    const started = performance.now()
    await fetch(`${url}/health`).then((r) => r.text())
    return performance.now() - started
  })

describe("change processing, through the server's worker threads", () => {
  layer(appLayer({ env: { SUMMARY_CACHE_TTL_MS: "0", SUMMARY_FORMAT: "text" } }), liveBlock)("default settings", (it) => {
    it.effect("a sentence moved to another section goes to the model, which sees the move (the reported case)", () =>
      Effect.gen(function*() {
        const app = yield* App
        const from = app.emulator.completionCount()
        const before = policy(["We keep your email.", "We show you ads."], ["We sell your data.", "We read your messages."])
        const after = policy(["We keep your email.", "We sell your data."], ["We show you ads.", "We read your messages."])
        const answer = yield* summarize(app, { before, after })
        expect(answer.status).toBe(200)
        expect(answer.body.status).toBe("summarized")
        expect(answer.body.summary).not.toBe(COSMETIC_SUMMARY)
        const calls = app.emulator.calls.slice(from)
        expect(calls).toHaveLength(1)
        expect(userText(calls[0]!.body)).toContain("## What we do\n> (moved from \"What we never do\") We sell your data.")
      }))

    it.effect("200,000 identical one-line edits make one upstream call, which sees the change once with its count", () =>
      Effect.gen(function*() {
        const app = yield* App
        const from = app.emulator.completionCount()
        const diff = `--- a/list.txt\n+++ b/list.txt\n@@ -1,200000 +1,200000 @@\n${"-1\n+2\n".repeat(200_000)}`
        const answer = yield* summarize(app, { diff })
        expect(answer.status).toBe(200)
        expect(answer.body).toMatchObject({ status: "summarized", rawDiff: diff, attempts: 1 })
        const calls = app.emulator.calls.slice(from)
        expect(calls).toHaveLength(1)
        expect(userText(calls[0]!.body)).toContain("- 1 (the same change on 200000 lines)\n+ 2 (the same change on 200000 lines)")
        expect(calls[0]!.usage!.prompt_tokens).toBeLessThan(2_000)
      }))

    it.effect("GET /health keeps answering while a change that takes seconds to diff is processed", () =>
      Effect.gen(function*() {
        const app = yield* App
        // Two wholly different texts: the line diff searches until its 3-second budget runs out.
        const lines = (prefix: string) => Array.from({ length: 40_000 }, (_, i) => `${prefix}${i} clause`).join("\n")
        const started = performance.now()
        const request = yield* Effect.fork(summarize(app, { before: lines("a"), after: lines("b") }))
        const probes: Array<number> = []
        while (probes.length < 200 && (yield* Fiber.poll(request))._tag === "None") {
          probes.push(yield* healthMs(app.url))
          yield* Effect.sleep("50 millis")
        }
        const answer = yield* Fiber.join(request)
        expect(answer.status).toBe(200)
        expect(performance.now() - started).toBeGreaterThan(2_500)
        expect(probes.length).toBeGreaterThan(5)
        // On the event loop this request stopped every probe for its whole duration.
        expect(Math.max(...probes)).toBeLessThan(1_500)
      }))
  })

  layer(appLayer({ env: { SUMMARY_CACHE_TTL_MS: "0", SUMMARY_INPUT_BUDGET_TOKENS: "2000", SUMMARY_MAX_PARTS: "2", SUMMARY_FORMAT: "text" } }), liveBlock)("SUMMARY_MAX_PARTS=2", (it) => {
    it.effect("a change needing many parts makes 2 part calls and one combining call; the last part says what was left out", () =>
      Effect.gen(function*() {
        const app = yield* App
        const from = app.emulator.completionCount()
        const answer = yield* summarize(app, { diff: fixture("37-quora").patch })
        expect(answer.status).toBe(200)
        expect(answer.body.status).toBe("summarized")
        const calls = app.emulator.calls.slice(from)
        expect(calls).toHaveLength(3)
        expect(calls[0]!.body.messages[0].content).toContain("part 1 of 2")
        expect(userText(calls[1]!.body)).toMatch(/too long to show whole: \d+ more characters/)
        expect(userText(calls[2]!.body)).toContain("Part 2 of 2:")
      }))
  })
})
