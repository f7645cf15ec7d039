import { afterEach, beforeEach, describe, expect, layer, vi } from "@effect/vitest"
import { Effect } from "effect"
import { TEST_API_KEY } from "../../support/TestApp.js"
import { App, appLayer, getText, ledgerRows, liveBlock, smallDiff, summarize } from "./support.js"

let distinct = 0
const freshChange = () => ({ diff: smallDiff(`We keep your data for ${++distinct} days and sell it.`) })

/** Every log line the service writes while a test runs (the JSON logger writes through console.log). */
let logged: Array<string> = []
beforeEach(() => {
  logged = []
  vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => void logged.push(args.map(String).join(" ")))
})
afterEach(() => vi.restoreAllMocks())

const API_TOKEN = "api-token-do-not-leak-42"

describe("Upstream text never carries a secret onward (issue 10 §4)", () => {
  layer(
    appLayer({
      env: { LLM_CIRCUIT_THRESHOLD: "1000", API_TOKEN, SMTP_URL: "smtp://alerts:smtp-pass-do-not-leak@127.0.0.1:2525" },
      emulator: { keyFault: { kind: "status", status: 401, echoAuthorization: true } }
    }),
    liveBlock
  )("an upstream that echoes the key", (it) => {
    const auth = { authorization: `Bearer ${API_TOKEN}` }

    it.effect("a 401 quoting the Authorization header: fallback with a safe detail, no key in the answer, the ledger or the logs", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.reset()
        app.emulator.always({ kind: "status", status: 401, echoAuthorization: true })
        const answer = yield* summarize(app, freshChange(), auth)
        // The emulator really did echo it: otherwise this test could not fail.
        expect(app.emulator.calls[0]!.headers["authorization"]).toBe(`Bearer ${TEST_API_KEY}`)
        expect(answer.body).toMatchObject({
          status: "fallback",
          fallbackReason: "upstream_rejected",
          fallbackDetail: "OpenRouter rejected the API key (401): check OPENROUTER_API_KEY"
        })
        const rows = yield* ledgerRows(app)
        const everything = [JSON.stringify(answer.body), JSON.stringify(rows), ...logged].join("\n")
        expect(everything).not.toContain(TEST_API_KEY)
        expect(logged.join("\n")).toContain("Invalid credentials: Bearer [REDACTED]")
      }))

    it.effect("a 400 that quotes the key, the API token and the SMTP password: the WARN line keeps the message, scrubbed", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.reset()
        app.emulator.always({
          kind: "status",
          status: 400,
          message: `Bad request for key ${TEST_API_KEY} (token ${API_TOKEN}, smtp smtp-pass-do-not-leak)`,
          metadata: { raw: `x-api-key: ${TEST_API_KEY}` }
        })
        const answer = yield* summarize(app, freshChange(), auth)
        expect(answer.body).toMatchObject({ fallbackReason: "upstream_rejected", fallbackDetail: "OpenRouter rejected the request as invalid (400)" })
        const warn = logged.find((line) => line.includes("Summary fell back to the raw diff"))
        expect(warn).toContain("Bad request for key [REDACTED] (token [REDACTED], smtp [REDACTED])")
        for (const secret of [TEST_API_KEY, API_TOKEN, "smtp-pass-do-not-leak"]) {
          expect([JSON.stringify(answer.body), ...logged].join("\n")).not.toContain(secret)
        }
      }))
  })

  // Its own service: the key is checked once at start and the answer kept 30 s.
  layer(
    appLayer({ env: { API_TOKEN }, emulator: { keyFault: { kind: "status", status: 401, echoAuthorization: true } } }),
    liveBlock
  )("a key check answered with the header echoed", (it) => {
    const auth = { authorization: `Bearer ${API_TOKEN}` }
    it.effect("the key check's 401 echoing the header (made at start) reaches /health/ready scrubbed", () =>
      Effect.gen(function*() {
        const app = yield* App
        const ready = yield* Effect.promise(() => app.get("/health/ready", auth).then((r) => r.text()))
        const anonymous = yield* getText(app, "/health/ready")
        expect(ready).toContain("Invalid credentials: Bearer [REDACTED]")
        expect(ready + anonymous).not.toContain(TEST_API_KEY)
      }))
  })
})

describe("An upstream answer larger than the cap is cut off (issue 10 §5)", () => {
  layer(appLayer({ env: { LLM_CIRCUIT_THRESHOLD: "1000" } }), liveBlock)("default cap from max_tokens", (it) => {
    it.effect("a 64 MB answer is aborted as invalid_response, not retried, and its ledger row says so", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.reset()
        app.emulator.always({ kind: "huge_content", bytes: 64 * 1_048_576 })
        const rowsBefore = (yield* ledgerRows(app)).length
        const answer = yield* summarize(app, freshChange())
        expect(answer.body).toMatchObject({
          status: "fallback",
          fallbackReason: "invalid_response",
          fallbackDetail: "OpenRouter's answer was larger than UPSTREAM_MAX_RESPONSE_BYTES allows; reading stopped",
          attempts: 1
        })
        const rows = (yield* ledgerRows(app)).slice(rowsBefore)
        expect(rows.map((r) => [r.status, r.error_code])).toEqual([["error", "response_too_large"]])
      }))

    it.effect("an 8 KB answer is within the default cap", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.reset()
        app.emulator.always({ kind: "huge_content", bytes: 8_192 })
        const answer = yield* summarize(app, freshChange())
        expect(answer.body).toMatchObject({ status: "summarized" })
      }))
  })

  layer(appLayer({ env: { LLM_CIRCUIT_THRESHOLD: "1000", UPSTREAM_MAX_RESPONSE_BYTES: "4096" } }), liveBlock)("UPSTREAM_MAX_RESPONSE_BYTES", (it) => {
    it.effect("overrides the cap: the same 8 KB answer is now too large", () =>
      Effect.gen(function*() {
        const app = yield* App
        app.emulator.reset()
        app.emulator.always({ kind: "huge_content", bytes: 8_192 })
        const answer = yield* summarize(app, freshChange())
        expect(answer.body).toMatchObject({ status: "fallback", fallbackReason: "invalid_response" })
        app.emulator.always(null)
        expect((yield* summarize(app, freshChange())).body).toMatchObject({ status: "summarized" })
      }))
  })
})

describe("OPENROUTER_APP_TITLE (issue 10 §7)", () => {
  layer(appLayer({ env: { OPENROUTER_APP_TITLE: "Café Politique" } }), liveBlock)("a Latin-1 title", (it) => {
    it.effect("is sent as X-Title and the call succeeds", () =>
      Effect.gen(function*() {
        const app = yield* App
        const answer = yield* summarize(app, freshChange())
        expect(answer.body).toMatchObject({ status: "summarized" })
        expect(app.emulator.calls[0]!.headers["x-title"]).toBe("Café Politique")
      }))
  })
})
