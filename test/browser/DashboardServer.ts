import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Effect, Layer, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { HttpAppLive } from "../../src/http/Server.js"
import { CircuitBreaker } from "../../src/llm/CircuitBreaker.js"
import { Logging } from "../../src/Logging.js"
import { AppServices } from "../../src/Services.js"
import { UsageRepo } from "../../src/usage/UsageRepo.js"
import { makeEmulator } from "../support/OpenRouterEmulator.js"
import { TEST_API_KEY } from "../support/TestApp.js"
import { configLayer, createDatabase } from "../support/TestDatabase.js"

/**
 * The whole service as `npm start` wires it (routes, middleware, services), on a free port against
 * the emulator and a fresh database, with its ledger and circuit at hand for seeding and faults.
 */
export const makeDashboardServer = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const emulator = yield* makeEmulator()
    const db = yield* createDatabase("dashboard")
    const dataDir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "dashboard-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const layer = HttpAppLive.pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
      Layer.provideMerge(AppServices),
      Layer.provide(Logging),
      Layer.provide(configLayer({
        DATABASE_URL: Redacted.value(db.url),
        OPENROUTER_BASE_URL: emulator.baseUrl,
        OPENROUTER_API_KEY: TEST_API_KEY,
        DATA_DIR: dataDir,
        LLM_RETRY_BASE_MS: "5",
        OPENROUTER_TIMEOUT_MS: "2000",
        LOG_LEVEL: "error",
        ...env
      }))
    )
    const context = yield* Layer.build(layer)
    const server = Context.get(context, HttpServer.HttpServer)
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    return {
      url: `http://127.0.0.1:${port}`,
      repo: Context.get(context, UsageRepo),
      circuit: Context.get(context, CircuitBreaker)
    }
  })
