import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { request } from "node:http"
import { App, appLayer, liveBlock, smallDiff, summarize } from "./support.js"

const TOKEN = "bearer-token-for-tests-4f9a7c"
const auth = { authorization: `Bearer ${TOKEN}` }
const diff = smallDiff("We keep your data for 90 days.")

/** A POST whose body goes out chunked, without Content-Length, as a streaming client sends it. */
const postChunked = (url: string, chunks: ReadonlyArray<string>) =>
  Effect.async<{ readonly status: number; readonly body: string } | { readonly error: string }>((resume) => {
    const req = request(`${url}/v1/summaries`, { method: "POST", headers: { ...auth, "content-type": "application/json" } }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => (body += chunk))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body })))
      res.on("error", (e) => resume(Effect.succeed({ error: e.message })))
    })
    req.on("error", (e) => resume(Effect.succeed({ error: e.message })))
    for (const chunk of chunks) req.write(chunk)
    req.end()
  })

describe("POST /v1/summaries over HTTP", () => {
  layer(
    appLayer({
      env: {
        API_TOKEN: TOKEN,
        MAX_INPUT_BYTES: "4096",
        OPENROUTER_MAX_TOKENS: "300",
        OPENROUTER_ALLOWED_MODELS: "openai/gpt-4o-mini,openai/gpt-4o"
      }
    }),
    liveBlock
  )("validation, authorization and size", (it) => {
    const badRequests: ReadonlyArray<readonly [string, unknown, string]> = [
      ["neither diff nor before/after", { document: { title: "Terms" } }, "diff"],
      ["both diff and before/after", { diff, before: "a", after: "b" }, "diff"],
      ["an empty diff", { diff: "" }, "diff"],
      ["a diff of blanks", { diff: "  \n " }, "diff"],
      ["before without after", { before: "old text" }, "after"],
      ["after without before", { after: "new text" }, "before"],
      ["a text that is not a unified diff", { diff: "We changed our terms, see the website." }, "diff"],
      ["a hunk with fewer lines than its header says", { diff: "@@ -1,3 +1,3 @@\n-old\n+new\n" }, "diff"],
      ["temperature 3", { diff, temperature: 3 }, "temperature"],
      ["temperature -0.1", { diff, temperature: -0.1 }, "temperature"],
      ["a model outside OPENROUTER_ALLOWED_MODELS", { diff, model: "anthropic/claude-3-opus" }, "model"],
      ["maxTokens above OPENROUTER_MAX_TOKENS", { diff, maxTokens: 301 }, "maxTokens"],
      ["maxTokens 0", { diff, maxTokens: 0 }, "maxTokens"]
    ]
    for (const [what, body, field] of badRequests) {
      it.effect(`400 naming \`${field}\` for ${what}, with no upstream call`, () =>
        Effect.gen(function*() {
          const app = yield* App
          const before = app.emulator.completionCount()
          const answer = yield* summarize(app, body, auth)
          expect(answer.status).toBe(400)
          expect(answer.body).toMatchObject({ _tag: "BadRequest", field })
          expect(answer.body.message).toEqual(expect.any(String))
          expect(app.emulator.completionCount()).toBe(before)
        }))
    }

    const wrongTypes: ReadonlyArray<readonly [string, unknown, string]> = [
      ["temperature \"hot\"", { diff, temperature: "hot" }, "temperature"],
      ["a numeric diff", { diff: 42 }, "diff"],
      ["a fractional maxTokens", { diff, maxTokens: 12.5 }, "maxTokens"],
      ["a document title that is an object", { diff, document: { title: { text: "x" } } }, "title"]
    ]
    for (const [what, body, field] of wrongTypes) {
      it.effect(`400 naming \`${field}\` for ${what}`, () =>
        Effect.gen(function*() {
          const app = yield* App
          const answer = yield* summarize(app, body, auth)
          expect(answer.status).toBe(400)
          expect(JSON.stringify(answer.body)).toContain(field)
        }))
    }

    it.effect("400 for a body that is not JSON", () =>
      Effect.gen(function*() {
        const app = yield* App
        const answer = yield* summarize(app, "{\"diff\": ", auth)
        expect(answer.status).toBe(400)
      }))

    it.effect("401 without a bearer token, with a wrong one, and with a token of another length; 200 with the right one", () =>
      Effect.gen(function*() {
        const app = yield* App
        const before = app.emulator.completionCount()
        for (const headers of [{}, { authorization: "Bearer wrong-token" }, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Basic ${TOKEN}` }]) {
          const answer = yield* summarize(app, { diff }, headers)
          expect(answer.status, JSON.stringify(headers)).toBe(401)
          expect(answer.body._tag).toBe("Unauthorized")
        }
        expect(app.emulator.completionCount()).toBe(before)
        const ok = yield* summarize(app, { diff }, auth)
        expect(ok.status).toBe(200)
        expect(ok.body.status).toBe("summarized")
      }))

    it.effect("413 for a body over MAX_INPUT_BYTES, answered rather than dropped", () =>
      Effect.gen(function*() {
        const app = yield* App
        const before = app.emulator.completionCount()
        const answer = yield* summarize(app, { diff: smallDiff("x".repeat(5_000)) }, auth)
        expect(answer.status).toBe(413)
        expect(answer.body.message).toContain("MAX_INPUT_BYTES")
        expect(app.emulator.completionCount()).toBe(before)
      }))

    it.effect("413 for a chunked body that grows over MAX_INPUT_BYTES, answered rather than dropped", () =>
      Effect.gen(function*() {
        const app = yield* App
        const body = JSON.stringify({ diff: smallDiff("y".repeat(6_000)) })
        const result = yield* postChunked(app.url, [body.slice(0, 1000), body.slice(1000)])
        expect(result).toMatchObject({ status: 413 })
      }))

    it.effect("a chunked body within MAX_INPUT_BYTES is read whole and summarized", () =>
      Effect.gen(function*() {
        const app = yield* App
        const change = smallDiff("We keep your data for 45 days.")
        const body = JSON.stringify({ diff: change })
        const result = yield* postChunked(app.url, [body.slice(0, 40), body.slice(40, 90), body.slice(90)])
        expect(result).toMatchObject({ status: 200 })
        expect(JSON.parse((result as { body: string }).body)).toMatchObject({ status: "summarized", rawDiff: change })
      }))

    it.effect("a body just under MAX_INPUT_BYTES is accepted", () =>
      Effect.gen(function*() {
        const app = yield* App
        const answer = yield* summarize(app, { diff: smallDiff("z".repeat(3_500)) }, auth)
        expect(answer.status).toBe(200)
        expect(answer.body.status).toBe("summarized")
      }))
  })

  layer(
    appLayer({ env: { LLM_QUEUE_MAX: "0", LLM_MAX_CONCURRENCY: "1", SUMMARY_CACHE_TTL_MS: "0" }, emulator: { latencyMs: 800 } }),
    liveBlock
  )("a full rate-limiter queue", (it) => {
    it.effect("429 with Retry-After for requests beyond the queue; those admitted are summarized; none is a 5xx", () =>
      Effect.gen(function*() {
        const app = yield* App
        const answers = yield* Effect.forEach(
          [1, 2, 3, 4, 5],
          (n) => summarize(app, { diff: smallDiff(`We keep your data for ${n} years.`) }),
          { concurrency: "unbounded" }
        )
        const statuses = answers.map((a) => a.status)
        expect(statuses.every((s) => s === 200 || s === 429), String(statuses)).toBe(true)
        const limited = answers.filter((a) => a.status === 429)
        const admitted = answers.filter((a) => a.status === 200)
        expect(limited.length).toBeGreaterThanOrEqual(1)
        expect(admitted.length).toBeGreaterThanOrEqual(1)
        for (const answer of limited) {
          expect(Number(answer.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
          expect(answer.body._tag).toBe("TooManyRequests")
        }
        for (const answer of admitted) expect(answer.body.status).toBe("summarized")
        // A refused request never reached the model.
        expect(app.emulator.completionCount()).toBe(admitted.length)
      }))
  })
})
