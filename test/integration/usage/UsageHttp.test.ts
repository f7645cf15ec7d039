import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, layer } from "@effect/vitest"
import { BigDecimal, Effect, Layer, Option } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { BudgetGuard, budgetStatus } from "../../../src/budget/BudgetGuard.js"
import { AuthorizationLive } from "../../../src/http/Authorization.js"
import { UsageApi } from "../../../src/usage/UsageApi.js"
import * as UsageHandlers from "../../../src/usage/UsageHandlers.js"
import { UsageParamsLive } from "../../../src/http/UsageHttp.js"
import { UsageRepo } from "../../../src/usage/UsageRepo.js"
import * as TestDatabase from "../../support/TestDatabase.js"
import { usageRow } from "../../support/UsageRows.js"

// The same group and handlers the service mounts, on an API holding only them.
class TestApi extends HttpApi.make("usage-test").add(UsageApi) {}

const Handlers = HttpApiBuilder.group(TestApi, "usage", (handlers) =>
  handlers
    .handle("totals", ({ urlParams }) => UsageHandlers.totalsOf(urlParams, budgetStatus))
    .handle("calls", ({ urlParams }) => UsageHandlers.callsPageOf(urlParams))).pipe(Layer.provide(UsageParamsLive))

const d = BigDecimal.unsafeFromString

const Budgets = Layer.mock(BudgetGuard, {
  status: Effect.succeed([{
    budget: "monthly" as const,
    kind: "hard" as const,
    limitUsd: d("50"),
    spentUsd: d("0.10002415"),
    reservedUsd: d("0.0003"),
    levelsAlerted: []
  }])
})

const Config = TestDatabase.configLayer({ DATA_DIR: mkdtempSync(Path.join(tmpdir(), "usage-http-")), API_TOKEN: "secret-token" })

const Server = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(TestApi).pipe(Layer.provide(Handlers), Layer.provide(AuthorizationLive))),
  HttpServer.withLogAddress,
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provideMerge(UsageRepo.layer),
  Layer.provideMerge(TestDatabase.layerWith("usage_http")),
  Layer.provide(Budgets),
  Layer.provideMerge(Config)
)

/** A cursor as `/v1/usage/calls` encodes them, around any text. */
const cursor = (text: string) => Buffer.from(text).toString("base64url")

const get = (path: string, token: string | null = "secret-token") =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const request = HttpClientRequest.get(path)
    const response = yield* client.execute(token === null ? request : HttpClientRequest.bearerToken(request, token))
    return { status: response.status, body: (yield* response.json) as any }
  }).pipe(Effect.scoped)

const getText = (path: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(HttpClientRequest.bearerToken(HttpClientRequest.get(path), "secret-token"))
    return { status: response.status, headers: response.headers, text: yield* response.text }
  }).pipe(Effect.scoped)

/** RFC 4180, as a spreadsheet reads it: quoted cells may hold commas, quotes and line breaks. */
const parseCsv = (text: string): Array<Record<string, string>> => {
  const rows: Array<Array<string>> = []
  let row: Array<string> = []
  let cell = ""
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"', i++)
      else if (c === '"') quoted = false
      else cell += c
    } else if (c === '"') quoted = true
    else if (c === ",") (row.push(cell), cell = "")
    else if (c === "\r" && text[i + 1] === "\n") (row.push(cell), rows.push(row), row = [], cell = "", i++)
    else cell += c
  }
  const [header, ...body] = rows
  return body.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])))
}

describe("usage HTTP", () => {
  layer(Server, { excludeTestServices: true })("GET /v1/usage and /v1/usage/calls", (it) => {
    it.effect("report calls, failures, unknown costs and exact decimal cost strings, with the budgets' spend", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        yield* Effect.all([
          repo.record(usageRow({ createdAt: new Date("2025-03-01T08:00:00Z") })),
          repo.record(usageRow({ createdAt: new Date("2025-03-01T09:00:00Z"), costUsd: Option.some(d("0.1")), model: "openai/gpt-4o" })),
          repo.record(usageRow({ createdAt: new Date("2025-03-02T09:00:00Z"), costUsd: Option.none(), costSource: "unknown", status: "error", errorCode: "502" }))
        ], { concurrency: "unbounded" })

        const report = yield* get("/v1/usage?from=2025-03-01&to=2025-03-02&groupBy=model")
        expect(report.status).toBe(200)
        expect(report.body.groups).toEqual([
          { key: "openai/gpt-4o", calls: 1, failedCalls: 0, unknownCostCalls: 0, promptTokens: 29, completionTokens: 33, totalTokens: 62, costUsd: "0.1" },
          { key: "openai/gpt-4o-mini", calls: 2, failedCalls: 1, unknownCostCalls: 1, promptTokens: 58, completionTokens: 66, totalTokens: 124, costUsd: "0.00002415" }
        ])
        expect(report.body.total).toMatchObject({ calls: 3, failedCalls: 1, unknownCostCalls: 1, costUsd: "0.10002415" })
        expect(report.body.budgets).toEqual([{
          budget: "monthly", kind: "hard", limitUsd: "50", spentUsd: "0.10002415", reservedUsd: "0.0003", levelsAlerted: []
        }])

        const today = yield* get("/v1/usage")
        const now = new Date().toISOString().slice(0, 10)
        expect(today.body).toMatchObject({ from: now, to: now, groupBy: "day", total: { calls: 0, costUsd: "0" } })

        const first = yield* get("/v1/usage/calls?limit=2")
        expect(first.status).toBe(200)
        expect(first.body.calls.map((c: any) => [c.createdAt, c.costUsd, c.costSource])).toEqual([
          ["2025-03-02T09:00:00.000Z", null, "unknown"],
          ["2025-03-01T09:00:00.000Z", "0.1", "provider"]
        ])
        const second = yield* get(`/v1/usage/calls?limit=2&before=${first.body.nextCursor}`)
        expect(second.body.calls.map((c: any) => c.costUsd)).toEqual(["0.00002415"])
        expect(second.body.nextCursor).toBeNull()
      }))

    it.effect("answer 400 naming the field for a bad date, grouping, limit or cursor, and 401 without the token", () =>
      Effect.gen(function*() {
        const notACursor = "before must be a nextCursor returned by this endpoint"
        const cases = [
          ["/v1/usage?from=2025-02-30", "from", `from must be a date as YYYY-MM-DD, got "2025-02-30"`],
          ["/v1/usage?to=yesterday", "to", `to must be a date as YYYY-MM-DD, got "yesterday"`],
          ["/v1/usage?from=2025-03-02&to=2025-03-01", "from", "from (2025-03-02) is after to (2025-03-01)"],
          ["/v1/usage?groupBy=week", "groupBy", `groupBy must be one of day, month, model, caller, got "week"`],
          ["/v1/usage?groupBy=", "groupBy", `groupBy must be one of day, month, model, caller, got ""`],
          ["/v1/usage/calls?limit=0", "limit", `limit must be a whole number from 1 to 500, got "0"`],
          ["/v1/usage/calls?limit=ten", "limit", `limit must be a whole number from 1 to 500, got "ten"`],
          ["/v1/usage/calls?before=bogus", "before", notACursor],
          ["/v1/usage?format=xml", "format", `format must be json or csv, got "xml"`],
          ["/v1/usage/calls?format=xlsx", "format", `format must be json or csv, got "xlsx"`],
          ["/v1/usage/calls?status=failed", "status", `status must be success or error, got "failed"`],
          ["/v1/usage/calls?caller=two%20words", "caller", `caller must be a caller's name: letters, digits, "_", "." or "-"`],
          // Well-formed but out of range: a timestamp past bigint, past any date, and an id that is no UUID.
          [`/v1/usage/calls?before=${cursor(`${"9".repeat(20)}|${crypto.randomUUID()}`)}`, "before", notACursor],
          [`/v1/usage/calls?before=${cursor(`9223372036854775808|${crypto.randomUUID()}`)}`, "before", notACursor],
          [`/v1/usage/calls?before=${cursor(`1733140000000000|${"-".repeat(36)}`)}`, "before", notACursor],
          [`/v1/usage/calls?before=${cursor(`1733140000000000|${"g".repeat(8)}-0000-0000-0000-000000000000`)}`, "before", notACursor]
        ] as const
        for (const [path, field, message] of cases) {
          const response = yield* get(path)
          expect([path, response.status, response.body]).toEqual([path, 400, { _tag: "BadRequest", field, message }])
        }
        // Given empty, a filter or the format counts as not given.
        expect((yield* get("/v1/usage?from=&to=&format=")).status).toBe(200)
        expect((yield* get("/v1/usage/calls?status=&caller=&model=&purpose=&format=")).status).toBe(200)
        expect((yield* get("/v1/usage", null)).status).toBe(401)
        // The token is checked before the parameters.
        expect((yield* get("/v1/usage?groupBy=week", null)).status).toBe(401)
      }))

    it.effect("export CSV that parses to the JSON's figures, exact decimals kept and an unknown cost left empty", () =>
      Effect.gen(function*() {
        const repo = yield* UsageRepo
        yield* Effect.all([
          repo.record(usageRow({ createdAt: new Date("2025-04-01T08:00:00Z"), costUsd: Option.some(d("0.000000000000000001")), model: "odd,\"model\"" })),
          repo.record(usageRow({ createdAt: new Date("2025-04-02T08:00:00Z"), costUsd: Option.some(d("12345678.123456789")), purpose: "=HYPERLINK(1)" })),
          repo.record(usageRow({ createdAt: new Date("2025-04-02T09:00:00Z"), costUsd: Option.none(), costSource: "unknown", status: "error", errorCode: "502" }))
        ], { concurrency: "unbounded" })

        for (const groupBy of ["day", "model"]) {
          const query = `/v1/usage?from=2025-04-01&to=2025-04-02&groupBy=${groupBy}`
          const json = (yield* get(query)).body
          const csv = yield* getText(`${query}&format=csv`)
          expect(csv.status).toBe(200)
          expect(csv.headers["content-type"]).toMatch(/^text\/csv/)
          const number = (row: Record<string, string>) => ({
            ...row,
            ...Object.fromEntries(["calls", "failedCalls", "unknownCostCalls", "promptTokens", "completionTokens", "totalTokens"].map((k) => [k, Number(row[k])]))
          })
          expect(parseCsv(csv.text).map(number)).toEqual([...json.groups, { key: "total", ...json.total }])
        }
        expect(parseCsv((yield* getText("/v1/usage?from=2025-04-01&to=2025-04-02&groupBy=model&format=csv")).text).at(-1)?.costUsd)
          .toBe("12345678.123456789000000001")

        const page = (yield* get("/v1/usage/calls?limit=4")).body
        const csv = yield* getText("/v1/usage/calls?limit=4&format=csv")
        expect(csv.headers["x-next-cursor"]).toBe(page.nextCursor)
        const rows = parseCsv(csv.text)
        expect(rows.map((r) => r.id)).toEqual(page.calls.map((c: any) => c.id))
        expect(rows.map((r) => r.costUsd)).toEqual(page.calls.map((c: any) => c.costUsd ?? ""))
        expect(rows.map((r) => [r.model, r.status, r.costSource])).toEqual(page.calls.map((c: any) => [c.model, c.status, c.costSource]))
        // A cell a spreadsheet would run as a formula is written as text.
        expect(rows.map((r) => r.purpose)).toContain("'=HYPERLINK(1)")
        expect(rows.map((r) => r.model)).toContain('odd,"model"')
      }))

    it.effect("filter the latest calls by model, status and purpose, paging within the filter", () =>
      Effect.gen(function*() {
        const all = (yield* get("/v1/usage/calls?limit=500")).body.calls
        const errors = (yield* get("/v1/usage/calls?status=error")).body.calls
        expect(errors.map((c: any) => c.id)).toEqual(all.filter((c: any) => c.status === "error").map((c: any) => c.id))
        expect(errors.length).toBeGreaterThan(1)

        const mini = all.filter((c: any) => c.model === "openai/gpt-4o-mini" && c.status === "success")
        const first = (yield* get("/v1/usage/calls?limit=1&status=success&model=openai%2Fgpt-4o-mini")).body
        const second = (yield* get(`/v1/usage/calls?limit=10&status=success&model=openai%2Fgpt-4o-mini&before=${first.nextCursor}`)).body
        expect([...first.calls, ...second.calls].map((c: any) => c.id)).toEqual(mini.map((c: any) => c.id))

        const purpose = (yield* get("/v1/usage/calls?purpose=%3DHYPERLINK(1)")).body.calls
        expect(purpose.map((c: any) => c.purpose)).toEqual(["=HYPERLINK(1)"])
      }))
  })
})
