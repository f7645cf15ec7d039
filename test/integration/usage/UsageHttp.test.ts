import { HttpApi, HttpApiBuilder, HttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { BigDecimal, Effect, Layer, Option } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { BudgetGuard } from "../../../src/budget/BudgetGuard.js"
import { AuthorizationLive } from "../../../src/http/Authorization.js"
import { UsageApi } from "../../../src/usage/UsageApi.js"
import * as UsageHandlers from "../../../src/usage/UsageHandlers.js"
import { UsageRepo } from "../../../src/usage/UsageRepo.js"
import * as TestDatabase from "../../support/TestDatabase.js"
import { usageRow } from "../../support/UsageRows.js"

// The same group and handlers the service mounts, on an API holding only them.
class TestApi extends HttpApi.make("usage-test").add(UsageApi) {}

const Handlers = HttpApiBuilder.group(TestApi, "usage", (handlers) =>
  handlers
    .handle("totals", ({ urlParams }) => UsageHandlers.totals(urlParams))
    .handle("calls", ({ urlParams }) => UsageHandlers.calls(urlParams)))

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
        const cases = [
          ["/v1/usage?from=2025-02-30", "from"],
          ["/v1/usage?to=yesterday", "to"],
          ["/v1/usage?from=2025-03-02&to=2025-03-01", "from"],
          ["/v1/usage?groupBy=week", "groupBy"],
          ["/v1/usage/calls?limit=0", "limit"],
          ["/v1/usage/calls?before=bogus", "before"],
          // Well-formed but out of range: a timestamp past bigint, past any date, and an id that is no UUID.
          [`/v1/usage/calls?before=${cursor(`${"9".repeat(20)}|${crypto.randomUUID()}`)}`, "before"],
          [`/v1/usage/calls?before=${cursor(`9223372036854775808|${crypto.randomUUID()}`)}`, "before"],
          [`/v1/usage/calls?before=${cursor(`1733140000000000|${"-".repeat(36)}`)}`, "before"],
          [`/v1/usage/calls?before=${cursor(`1733140000000000|${"g".repeat(8)}-0000-0000-0000-000000000000`)}`, "before"]
        ] as const
        for (const [path, field] of cases) {
          const response = yield* get(path)
          expect([path, response.status, response.body.field]).toEqual([path, 400, field])
        }
        expect((yield* get("/v1/usage", null)).status).toBe(401)
      }))
  })
})
