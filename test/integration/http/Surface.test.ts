import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { request } from "node:http"
import pkg from "../../../package.json" with { type: "json" }
import { FallbackReason } from "../../../src/summarize/Summary.js"
import { TEST_API_KEY } from "../../support/TestApp.js"
import { App, appLayer, ledgerCount, liveBlock, metricValue, smallDiff, summarize } from "../summarize/support.js"

const TOKEN = "surface-token-7d1c9e"
const auth = { authorization: `Bearer ${TOKEN}` }

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

const call = (url: string, init: RequestInit = {}): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    return { status: response.status, headers: response.headers, text: await response.text() }
  })

const postRaw = (url: string, body: string, headers: Record<string, string> = auth) =>
  call(`${url}/v1/summaries`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body })

/**
 * A POST that declares `declared` bytes but sends only the first kilobyte, then waits: the answer
 * and whether it came while the body was still unsent.
 */
const postPartially = (url: string, declared: number, headers: Record<string, string>) =>
  Effect.async<{ readonly status: number; readonly body: string } | "no answer">((resume) => {
    const req = request(`${url}/v1/summaries`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", "content-length": String(declared) }
    }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => (body += chunk))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body })))
    })
    req.on("error", () => {})
    req.write(`{"diff":"${"x".repeat(1000)}`)
    const timer = setTimeout(() => {
      req.destroy()
      resume(Effect.succeed("no answer"))
    }, 3_000)
    return Effect.sync(() => {
      clearTimeout(timer)
      req.destroy()
    })
  })

describe("the HTTP surface", () => {
  layer(appLayer({ env: { API_TOKEN: TOKEN, MAX_INPUT_BYTES: "2000000" } }), liveBlock)("with API_TOKEN set", (it) => {
    const invalid: ReadonlyArray<readonly [string, string, RegExp]> = [
      ["unbalanced JSON", `{"diff": "x"`, /not valid JSON/],
      ["a raw NUL inside a string", `{"diff": "a\u0000b"}`, /not valid JSON: Bad control character/],
      ["NaN", `{"diff": NaN}`, /not valid JSON/],
      ["trailing garbage", `{"diff": "x"} and more`, /not valid JSON/],
      ["an empty body", "", /the body is empty/]
    ]
    for (const [what, body, message] of invalid) {
      it.effect(`400 saying what is wrong for ${what}`, () =>
        Effect.gen(function*() {
          const app = yield* App
          const reply = yield* postRaw(app.url, body)
          expect(reply.status).toBe(400)
          const answer = JSON.parse(reply.text)
          expect(answer).toMatchObject({ _tag: "BadRequest", field: "body" })
          expect(answer.message).toMatch(message)
          expect(answer.message).not.toContain("\u0000")
        }))
    }

    it.effect("a request without a valid token is refused (401) before its body is read", () =>
      Effect.gen(function*() {
        const app = yield* App
        // 1.5 MB promised, 1 KB sent: the answer can only come if nothing waits for the rest.
        for (const headers of [{}, { authorization: "Bearer wrong" }]) {
          const answer = yield* postPartially(app.url, 1_500_000, headers)
          expect(answer).toMatchObject({ status: 401 })
          expect(JSON.parse((answer as { body: string }).body)._tag).toBe("Unauthorized")
        }
        // With the token the server waits for the body it was promised.
        expect(yield* postPartially(app.url, 1_500_000, auth)).toBe("no answer")
        // A whole large body sent at once with a wrong token still gets its 401, not a reset connection.
        const whole = yield* postRaw(app.url, JSON.stringify({ diff: "y".repeat(1_500_000) }), { authorization: "Bearer wrong" })
        expect(whole.status).toBe(401)
      }))

    it.effect("a wrong method on a known path gets 405 with Allow, not 415 or 404", () =>
      Effect.gen(function*() {
        const app = yield* App
        const cases: ReadonlyArray<readonly [string, string, string]> = [
          ["DELETE", "/v1/summaries", "POST"],
          ["GET", "/v1/summaries", "POST"],
          ["POST", "/v1/usage", "GET"],
          ["PUT", "/health", "GET"]
        ]
        for (const [method, path, allowed] of cases) {
          const reply = yield* call(`${app.url}${path}`, { method, headers: { ...auth, "content-type": "text/plain" }, ...(method === "GET" ? {} : { body: "x" }) })
          expect(reply.status, `${method} ${path}`).toBe(405)
          expect(reply.headers.get("allow")).toContain(allowed)
          expect(JSON.parse(reply.text)).toMatchObject({ _tag: "MethodNotAllowed" })
        }
        expect((yield* call(`${app.url}/health`, { method: "HEAD" })).status).toBe(200)
      }))

    it.effect("GET / points to the docs and the OpenAPI document", () =>
      Effect.gen(function*() {
        const app = yield* App
        const reply = yield* call(`${app.url}/`)
        expect(reply.status).toBe(200)
        expect(JSON.parse(reply.text)).toMatchObject({ docs: "/docs", openapi: "/openapi.json", version: pkg.version })
        expect(JSON.parse(reply.text).endpoints).toContain("POST /v1/summaries")
      }))

    it.effect("every response carries x-request-id: the caller's when well-formed, a fresh one otherwise", () =>
      Effect.gen(function*() {
        const app = yield* App
        const replies: ReadonlyArray<readonly [string, Reply]> = [
          ["GET /", yield* call(`${app.url}/`)],
          ["GET /health", yield* call(`${app.url}/health`)],
          ["GET /health/ready", yield* call(`${app.url}/health/ready`)],
          ["GET /metrics", yield* call(`${app.url}/metrics`)],
          ["GET /openapi.json", yield* call(`${app.url}/openapi.json`)],
          ["GET /docs", yield* call(`${app.url}/docs`)],
          ["404", yield* call(`${app.url}/nowhere`)],
          ["401", yield* call(`${app.url}/v1/usage`)],
          ["200 usage", yield* call(`${app.url}/v1/usage`, { headers: auth })],
          ["400 usage", yield* call(`${app.url}/v1/usage?from=yesterday`, { headers: auth })],
          ["405", yield* call(`${app.url}/v1/usage`, { method: "DELETE" })],
          ["415", yield* call(`${app.url}/v1/summaries`, { method: "POST", headers: { ...auth, "content-type": "text/plain" }, body: "x" })],
          ["413", yield* postRaw(app.url, JSON.stringify({ diff: "x".repeat(2_100_000) }))],
          ["400 JSON", yield* postRaw(app.url, "{")],
          ["200 summary", yield* postRaw(app.url, JSON.stringify({ diff: smallDiff("We keep your data for 12 days.") }))]
        ]
        for (const [what, reply] of replies) expect(reply.headers.get("x-request-id"), what).toMatch(/^[0-9a-f-]{36}$/)
        // The Swagger page is loaded with the first request for it, not at start.
        const docs = replies.find(([what]) => what === "GET /docs")![1]
        expect(docs.status).toBe(200)
        expect(docs.text).toContain("SwaggerUIBundle")
        expect(docs.text).toContain("/v1/summaries")

        const mine = yield* call(`${app.url}/health`, { headers: { "x-request-id": "caller-42.a:b" } })
        expect(mine.headers.get("x-request-id")).toBe("caller-42.a:b")
        const mineOnError = yield* call(`${app.url}/nowhere`, { headers: { "x-request-id": "caller-43" } })
        expect(mineOnError.headers.get("x-request-id")).toBe("caller-43")
        const malformed = yield* call(`${app.url}/health`, { headers: { "x-request-id": "has spaces; and <tags>" } })
        expect(malformed.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/)
      }))

    it.effect("the OpenAPI document: the package's version, an example request and answer for every operation, the middlewares' statuses, every fallback reason explained", () =>
      Effect.gen(function*() {
        const app = yield* App
        const spec = JSON.parse((yield* call(`${app.url}/openapi.json`)).text)
        expect(spec.info.version).toBe(pkg.version)
        const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
          Object.entries(item as Record<string, any>).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as const))
        expect(operations.length).toBeGreaterThanOrEqual(7)
        for (const [name, op] of operations) {
          const ok = Object.values(op.responses["200"].content)[0] as any
          expect(ok.example, `${name}: an example answer`).toBeDefined()
          if (op.requestBody !== undefined) {
            expect((Object.values(op.requestBody.content)[0] as any).example, `${name}: an example request`).toBeDefined()
          }
        }
        const summarize = spec.paths["/v1/summaries"].post
        for (const status of ["400", "401", "413", "415", "429"]) {
          expect(summarize.responses[status], status).toBeDefined()
          expect((Object.values(summarize.responses[status].content)[0] as any).example, status).toBeDefined()
        }
        for (const reason of FallbackReason.literals) expect(summarize.description).toMatch(new RegExp("`" + reason + "`: \\w"))
      }))

    it.effect("/metrics: seconds in histograms, a model label on tokens and cost, request durations by route and status, process metrics", () =>
      Effect.gen(function*() {
        const app = yield* App
        const answer = yield* summarize(app, { diff: smallDiff("We keep your data for 77 days.") }, auth)
        expect(answer.body.status).toBe("summarized")
        const text = (yield* call(`${app.url}/metrics`)).text
        const model = "openai/gpt-4o-mini"
        expect(metricValue(text, "llm_tokens_total", { kind: "prompt", model })).toBeGreaterThan(0)
        expect(metricValue(text, "llm_tokens_total", { kind: "completion", model })).toBeGreaterThan(0)
        expect(metricValue(text, "llm_cost_usd_total", { model })).toBeGreaterThan(0)
        expect(text).toMatch(/# HELP llm_cost_usd_total .*approximate/)
        expect(metricValue(text, "http_request_duration_seconds_count", { route: "/v1/summaries", status: "200" })).toBeGreaterThanOrEqual(1)
        expect(text).toMatch(/http_request_duration_seconds_bucket\{route="\/v1\/summaries",status="200",le="0.005"\}/)
        expect(text).toContain("# TYPE llm_ratelimit_wait_seconds histogram")
        for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "nodejs_heap_size_used_bytes", "nodejs_eventloop_lag_seconds"]) {
          expect(text, name).toMatch(new RegExp(`^${name}(\\{[^}]*\\})? `, "m"))
        }
        const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!)
        expect(names.filter((n) => /_ms(_|$)|millis/.test(n))).toEqual([])
        // Each family once: the two registries do not overlap.
        expect(new Set(names).size).toBe(names.length)
      }))
  })

  // OpenRouter answers the key check with a 401 whose body echoes the Authorization header.
  layer(
    appLayer({
      env: { API_TOKEN: TOKEN },
      emulator: { keyFault: { kind: "status", status: 401, message: `Invalid credentials: Bearer ${TEST_API_KEY}` } }
    }),
    liveBlock
  )("readiness with a key the upstream refuses", (it) => {
    it.effect("without the token: ok / not ok and a fixed reason code, never the upstream's text", () =>
      Effect.gen(function*() {
        const app = yield* App
        for (const headers of [{}, { authorization: "Bearer wrong" }]) {
          const reply = yield* call(`${app.url}/health/ready`, { headers })
          expect(reply.status).toBe(200)
          expect(JSON.parse(reply.text)).toEqual({ status: "ok", ai: "not_ready", reason: "upstream_key_rejected" })
          expect(reply.text).not.toContain(TEST_API_KEY)
          expect(reply.text).not.toContain("Invalid credentials")
        }
      }))

    it.effect("with the token: the details", () =>
      Effect.gen(function*() {
        const app = yield* App
        const reply = yield* call(`${app.url}/health/ready`, { headers: auth })
        expect(reply.status).toBe(200)
        expect(JSON.parse(reply.text)).toMatchObject({
          status: "ok",
          ai: "not_ready",
          reason: "upstream_key_rejected",
          database: { ok: true },
          upstream: { ok: false },
          circuit: "closed",
          spoolDepth: 0
        })
      }))
  })

  layer(appLayer(), liveBlock)("readiness after the database was reset", (it) => {
    it.effect("a database dropped and recreated empty is noticed: the schema is migrated again and the spooled rows reach the ledger without a restart", () =>
      Effect.gen(function*() {
        const app = yield* App
        expect((yield* summarize(app, { diff: smallDiff("We keep your data for 5 days.") })).body.status).toBe("summarized")
        yield* app.sql`DROP SCHEMA public CASCADE`.pipe(Effect.zipRight(app.sql`CREATE SCHEMA public`), Effect.orDie)
        // Its row has no table to go to: it is spooled.
        expect((yield* summarize(app, { diff: smallDiff("We keep your data for 6 days.") })).body.status).toBe("summarized")
        const reply = yield* call(`${app.url}/health/ready`)
        expect(reply.status).toBe(200)
        const report = JSON.parse(reply.text)
        expect(report).toMatchObject({ status: "ok", reason: "ok", database: { ok: true } })
        expect(report.database.detail).toMatch(/schema was missing/)
        expect((yield* summarize(app, { diff: smallDiff("We keep your data for 7 days.") })).body.status).toBe("summarized")
        const drained = Effect.gen(function*() {
          const spoolDepth = JSON.parse((yield* call(`${app.url}/health/ready`)).text).spoolDepth
          const rows = yield* ledgerCount(app).pipe(Effect.catchAllDefect(() => Effect.succeed(-1)))
          return spoolDepth === 0 && rows === 2 ? Effect.void : yield* Effect.fail(`spool ${spoolDepth}, ledger ${rows}`)
        })
        yield* Effect.retry(drained, Schedule.spaced("200 millis").pipe(Schedule.upTo("15 seconds")))
      }))
  })
})
