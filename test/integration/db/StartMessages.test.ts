/**
 * A database the service cannot use stops the start with one line on stderr (what is wrong, what
 * to do), no stack trace, exit code 1; the cause shows at LOG_LEVEL=debug. The real server process.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { buildEntries } from "../../support/Build.js"
import { freePort } from "../../support/ServiceProcess.js"

const ROOT = fileURLToPath(new URL("../../../", import.meta.url))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const startServer = (bundle: string, env: Record<string, string>) =>
  Effect.async<Run>((resume) => {
    const child = execFile(
      process.execPath,
      [bundle],
      { cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", PORT: "0", ...env }, timeout: 90_000 },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : child.exitCode, stdout, stderr }))
    )
  })

const scratch = () =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "start-messages-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/**
 * A PostgreSQL server that asks for a password and refuses it, as a real one does for a wrong
 * password (the local test server trusts every login, so it cannot show this).
 */
const refusingServer = Effect.acquireRelease(
  Effect.async<net.Server>((resume) => {
    const server = net.createServer((socket) => {
      let stage = 0
      socket.on("data", () => {
        if (stage++ === 0) {
          socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])) // AuthenticationCleartextPassword
          return
        }
        const fields = Buffer.from("SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"postgres\"\0\0")
        const header = Buffer.alloc(5)
        header.write("E")
        header.writeInt32BE(fields.length + 4, 1)
        socket.end(Buffer.concat([header, fields]))
      })
      socket.on("error", () => undefined)
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.sync(() => server.close())
)

const stackLine = /^\s+at /m

describe("the start says in one line why the database cannot be used", () => {
  it.scopedLive("DATABASE_URL unreachable, wrong password, DATA_DIR not writable: one line each and exit 1; the cause at LOG_LEVEL=debug", () =>
    Effect.gen(function*() {
      const { main } = yield* buildEntries
      const dir = yield* scratch()
      const closedPort = yield* freePort
      const refusing = yield* refusingServer
      const refusingPort = (refusing.address() as net.AddressInfo).port
      const aFile = Path.join(dir, "a-file")
      writeFileSync(aFile, "")
      const readOnly = Path.join(dir, "read-only")
      mkdirSync(readOnly, { mode: 0o500 })
      const root = process.getuid?.() === 0

      const cases: ReadonlyArray<{ readonly env: Record<string, string>; readonly line: string }> = [
        {
          env: { DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/ledger`, DATA_DIR: Path.join(dir, "d1") },
          line: `Cannot reach PostgreSQL at postgres@127.0.0.1:${closedPort}/ledger: connection refused; ` +
            "check the host and port in DATABASE_URL and that the server runs"
        },
        {
          env: { DATABASE_URL: `postgres://postgres:wrong@127.0.0.1:${refusingPort}/ledger`, DATA_DIR: Path.join(dir, "d2") },
          line: `PostgreSQL at postgres@127.0.0.1:${refusingPort}/ledger refused the login ` +
            `(password authentication failed for user "postgres"); check the user and password in DATABASE_URL`
        },
        {
          env: { DATA_DIR: Path.join(aFile, "data") },
          line: `DATA_DIR ${Path.join(aFile, "data")} is not writable (a file is in the way, not a directory); ` +
            "fix its permissions or set DATA_DIR to a directory this user can write"
        },
        // root writes anywhere: the permission case needs an ordinary user (as in CI).
        ...(root ? [] : [{
          env: { DATA_DIR: Path.join(readOnly, "data") },
          line: `DATA_DIR ${Path.join(readOnly, "data")} is not writable (permission denied); ` +
            "fix its permissions or set DATA_DIR to a directory this user can write"
        }])
      ]
      const runs = yield* Effect.forEach(cases, (c) => startServer(main, c.env), { concurrency: 2 })
      runs.forEach((run, i) => {
        const { line } = cases[i]!
        console.log(`[start] exit ${run.code}: ${run.stderr.trim()}`)
        expect(run.code, run.stdout + run.stderr).toBe(1)
        expect(run.stderr.trim()).toBe(line)
        expect(run.stdout + run.stderr).not.toMatch(stackLine)
      })

      const debug = yield* startServer(main, { ...cases[0]!.env, LOG_LEVEL: "debug" })
      expect(debug.code).toBe(1)
      expect(debug.stderr.trim()).toBe(cases[0]!.line)
      expect(debug.stdout).toContain("ECONNREFUSED")
    }), { timeout: 300_000 })
})
