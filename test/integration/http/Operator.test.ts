/**
 * What an operator sees from the real process: the start's messages, readiness, request ids in the
 * log, and the server's timeouts for slow clients.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted, Schedule } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { makeEmulator } from "../../support/OpenRouterEmulator.js"
import { freePort, startService } from "../../support/ServiceProcess.js"
import { createDatabase } from "../../support/TestDatabase.js"

const root = fileURLToPath(new URL("../../../", import.meta.url))

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "operator-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** The service run to its exit, as `npm start` runs it: its exit code and every line it wrote. */
const runToExit = (env: Record<string, string>) =>
  Effect.async<{ readonly code: number | null; readonly lines: ReadonlyArray<string> }>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    child.on("close", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, lines: output.split("\n").filter((l) => l !== "") }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const tableExists = (url: string, table: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      const result = await client.query("SELECT to_regclass($1) IS NOT NULL AS present", [table])
      return result.rows[0]?.present === true
    } finally {
      await client.end()
    }
  })

const occupy = Effect.acquireRelease(
  Effect.async<net.Server & { port: number }>((resume) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(Object.assign(server, { port: (server.address() as net.AddressInfo).port }))))
  }),
  (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

/** Connects and sends `text`; resolves with the milliseconds until the server closed the connection. */
const closedAfter = (port: number, text: string) =>
  Effect.async<number>((resume) => {
    const startedAt = Date.now()
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text))
    socket.resume()
    socket.on("close", () => resume(Effect.succeed(Date.now() - startedAt)))
    socket.on("error", () => {})
    const timer = setTimeout(() => socket.destroy(), 8_000)
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

const noStack = (lines: ReadonlyArray<string>) => lines.filter((l) => /^\s+at |\\n\s+at /.test(l))

describe("the service as an operator starts it", () => {
  it.scopedLive("a port already in use: one line naming the port and PORT, exit code 1, before any migration", () =>
    Effect.gen(function*() {
      const busy = yield* occupy
      const db = yield* createDatabase("operator_port")
      const { code, lines } = yield* runToExit({
        DATABASE_URL: Redacted.value(db.url),
        DATA_DIR: yield* tempDir,
        PORT: String(busy.port),
        LOG_LEVEL: "info"
      })
      expect(code).toBe(1)
      const errors = lines.filter((l) => l.includes(`"ERROR"`))
      expect(errors).toHaveLength(1)
      expect(JSON.parse(errors[0]!).message).toContain(`port ${busy.port} on 127.0.0.1 is already in use; set PORT`)
      expect(noStack(lines)).toEqual([])
      expect(lines.join("\n")).not.toMatch(/migrations applied/i)
      expect(yield* tableExists(Redacted.value(db.url), "llm_api_usage")).toBe(false)
    }), 90_000)

  it.scopedLive("an unreachable DATABASE_URL: one line saying so and to check DATABASE_URL, exit code 1, no stack", () =>
    Effect.gen(function*() {
      const closed = yield* freePort
      const { code, lines } = yield* runToExit({
        DATABASE_URL: `postgres://postgres:hunter2@127.0.0.1:${closed}/nowhere`,
        DATA_DIR: yield* tempDir,
        PORT: "0",
        LOG_LEVEL: "warn"
      })
      expect(code).toBe(1)
      // One plain line on stderr (the database's own start message), nothing else at WARN or above.
      const said = lines.filter((l) => l.includes("DATABASE_URL"))
      expect(said).toHaveLength(1)
      expect(said[0]).toMatch(/^Cannot reach PostgreSQL at postgres@127\.0\.0\.1:\d+\/nowhere: connection refused; check the host and port in DATABASE_URL/)
      expect(lines.filter((l) => l.includes(`"ERROR"`))).toEqual([])
      expect(lines.join("\n")).not.toContain("hunter2")
      expect(noStack(lines)).toEqual([])
    }), 90_000)

  it.scopedLive("a wrong or revoked key: the start says OpenRouter refused it and to check OPENROUTER_API_KEY; readiness says the AI is not ready", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator({ keyInfo: { valid: false } })
      const db = yield* createDatabase("operator_key")
      const service = yield* startService({
        DATABASE_URL: Redacted.value(db.url),
        DATA_DIR: yield* tempDir,
        OPENROUTER_BASE_URL: emulator.baseUrl,
        OPENROUTER_API_KEY: "sk-or-v1-revoked-0000",
        LOG_LEVEL: "debug",
        HTTP_HEADERS_TIMEOUT_MS: "1000",
        HTTP_REQUEST_TIMEOUT_MS: "2000",
        HTTP_KEEP_ALIVE_TIMEOUT_MS: "500"
      }, { readyTimeout: "90 seconds" })
      const refused = Effect.suspend(() => {
        const line = service.lines().find((l) => l.includes("OpenRouter refused the API key"))
        return line === undefined ? Effect.fail("not yet") : Effect.succeed(JSON.parse(line))
      })
      const line = yield* Effect.retry(refused, Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds")))
      expect(line.logLevel).toBe("ERROR")
      expect(line.message).toContain("OpenRouter refused the API key (401); check OPENROUTER_API_KEY")
      expect(line.message).not.toContain("sk-or-v1-revoked")
      expect(service.lines().some((l) => /AI on/.test(l))).toBe(false)

      const ready = yield* Effect.promise(() => fetch(`${service.url}/health/ready`).then(async (r) => ({ status: r.status, body: await r.json() as any })))
      expect(ready.status).toBe(200)
      expect(ready.body).toMatchObject({ status: "ok", ai: "not_ready", reason: "upstream_key_rejected" })

      // The request id in the header is the one on the request's log lines, the caller's or a fresh one.
      for (const given of ["operator-check-1", undefined]) {
        const response = yield* Effect.promise(() => fetch(`${service.url}/health`, { headers: given === undefined ? {} : { "x-request-id": given } }))
        const id = response.headers.get("x-request-id")!
        if (given !== undefined) expect(id).toBe(given)
        const logged = Effect.suspend(() => {
          const found = service.lines().filter((l) => l.includes(id)).map((l) => JSON.parse(l))
          return found.length === 0 ? Effect.fail("not yet") : Effect.succeed(found)
        })
        const entries = yield* Effect.retry(logged, Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds")))
        expect(entries[0]).toMatchObject({ message: "HTTP request answered", annotations: { requestId: id, route: "/health", status: 200 } })
      }

      // Slow clients: headers never finished, and an idle keep-alive connection, are closed on time.
      const slowHeaders = yield* closedAfter(service.port, "GET /health HTTP/1.1\r\nHost: x\r\n")
      expect(slowHeaders).toBeLessThan(3_500)
      const idle = yield* closedAfter(service.port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
      expect(idle).toBeLessThan(2_500)
      expect(idle).toBeGreaterThanOrEqual(400)
    }), 180_000)
})
