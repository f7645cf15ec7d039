import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Effect, Layer, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { HttpAppLive } from "../../src/http/Server.js"
import { Logging } from "../../src/Logging.js"
import { AppServices } from "../../src/Services.js"
import { Tracing } from "../../src/telemetry/Tracing.js"
import type { Emulator, EmulatorOptions } from "./OpenRouterEmulator.js"
import { makeEmulator } from "./OpenRouterEmulator.js"
import { configLayer, createDatabase } from "./TestDatabase.js"

export const TEST_API_KEY = "sk-or-v1-test-key-0123456789"

export interface TestApp {
  /** `http://127.0.0.1:PORT` of the running service. */
  readonly url: string
  readonly emulator: Emulator
  /** The environment the service was started with (DATABASE_URL, OPENROUTER_BASE_URL, DATA_DIR, ...). */
  readonly env: Readonly<Record<string, string>>
  /** The ledger database, for assertions. */
  readonly sql: SqlClient.SqlClient
  readonly post: (path: string, body: unknown, headers?: Record<string, string>) => Promise<Response>
  readonly get: (path: string, headers?: Record<string, string>) => Promise<Response>
}

/**
 * The whole service, wired exactly as `npm start` wires it, on a free port, against the emulator
 * and a fresh database on the real PostgreSQL. Retries are shortened to keep real time small.
 */
export const makeTestApp = (options: { readonly env?: Record<string, string>; readonly emulator?: EmulatorOptions } = {}) =>
  Effect.gen(function*() {
    const emulator = yield* makeEmulator(options.emulator)
    const db = yield* createDatabase("app")
    const dataDir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "policy-summarizer-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const env: Record<string, string> = {
      DATABASE_URL: Redacted.value(db.url),
      OPENROUTER_BASE_URL: emulator.baseUrl,
      OPENROUTER_API_KEY: TEST_API_KEY,
      DATA_DIR: dataDir,
      LLM_RETRY_BASE_MS: "5",
      OPENROUTER_TIMEOUT_MS: "2000",
      LOG_LEVEL: "warning",
      ...options.env
    }
    const layer = HttpAppLive.pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
      Layer.provideMerge(AppServices),
      Layer.provide(Tracing),
      Layer.provide(Logging),
      Layer.provide(configLayer(env))
    )
    const context = yield* Layer.build(layer)
    const server = Context.get(context, HttpServer.HttpServer)
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const url = `http://127.0.0.1:${port}`
    return {
      url,
      emulator,
      env,
      sql: Context.get(context, SqlClient.SqlClient),
      post: (path, body, headers = {}) =>
        fetch(`${url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: typeof body === "string" ? body : JSON.stringify(body)
        }),
      get: (path, headers = {}) => fetch(`${url}${path}`, { headers })
    } satisfies TestApp
  })
