/**
 * The floor of what an Effect service can do per call, for `bench/run.ts`: an `HttpApi` with one
 * endpoint (`POST /v1/chat/completions`, its body decoded by a Schema), the `openai` SDK over the
 * service's undici fetch, and one INSERT of a ledger-like row through `@effect/sql-pg` before the
 * answer. No middleware, no limiter, no retries: what the service's summaries would cost if it
 * did nothing else (issue 12's "minimal Effect HttpApi + SDK + INSERT app").
 * Run: node --import tsx bench/minimalEffect.ts <upstream base url> <database url>;
 * prints `{"url": ...}` once listening.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import OpenAI from "openai"
import { makeUndiciFetch } from "./undiciFetch.js"

const ChatBody = Schema.Struct({ model: Schema.String, messages: Schema.Array(Schema.Unknown) }, Schema.Record({ key: Schema.String, value: Schema.Unknown }))

class Api extends HttpApi.make("floor").add(
  HttpApiGroup.make("chat").add(HttpApiEndpoint.post("create", "/v1/chat/completions").setPayload(ChatBody).addSuccess(Schema.Unknown))
) {}

const ChatLive = HttpApiBuilder.group(Api, "chat", (handlers) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS bench_floor_calls (
      id bigserial PRIMARY KEY, request_id text, model text, prompt_tokens int, completion_tokens int, cost_usd numeric,
      created_at timestamptz NOT NULL DEFAULT now())`
    const client = new OpenAI({ apiKey: "sk-bench", baseURL: process.argv[2] ?? "", maxRetries: 0, fetch: makeUndiciFetch({ connections: 128 }) })
    return handlers.handle("create", ({ payload }) =>
      Effect.gen(function*() {
        const completion = yield* Effect.promise(() => client.chat.completions.create(payload as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming))
        const usage = completion.usage as (OpenAI.CompletionUsage & { readonly cost?: number }) | undefined
        yield* sql`INSERT INTO bench_floor_calls ${sql.insert({
          request_id: completion.id,
          model: completion.model,
          prompt_tokens: usage?.prompt_tokens ?? 0,
          completion_tokens: usage?.completion_tokens ?? 0,
          cost_usd: String(usage?.cost ?? 0)
        })}`.pipe(Effect.orDie)
        return completion
      }))
  }))

const announce = Layer.effectDiscard(HttpServer.addressWith((address) =>
  Effect.sync(() => {
    const port = address._tag === "TcpAddress" ? address.port : 0
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`)
  })))

const ServerLive = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(ChatLive))),
  Layer.merge(announce),
  Layer.provide(NodeHttpServer.layer(() => createServer({ keepAliveTimeout: 30_000 }), { host: "127.0.0.1", port: 0 })),
  Layer.provide(PgClient.layer({ url: Redacted.make(process.argv[3] ?? ""), maxConnections: 10 }))
)

NodeRuntime.runMain(Layer.launch(ServerLive), { disablePrettyLogger: true })
