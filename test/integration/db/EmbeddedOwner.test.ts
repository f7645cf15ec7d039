/**
 * The embedded database has one owner: the server (or, when no server runs, the CLI). Everything
 * else on the same DATA_DIR either uses the owner's private socket (the CLI) or stops at once with
 * one line naming the owner (a second server). Real child processes, as a user runs them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { buildEntries } from "../../support/Build.js"
import * as PriceTable from "../../../src/llm/PriceTable.js"
import { makeEmulator } from "../../support/OpenRouterEmulator.js"
import { startService } from "../../support/ServiceProcess.js"
import { TEST_API_KEY } from "../../support/TestApp.js"
import { postJson, request } from "../../reliability/Client.js"
import { freshChange } from "../../reliability/support.js"

const ROOT = fileURLToPath(new URL("../../../", import.meta.url))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const tempDir = (label: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(Path.join(tmpdir(), `owner-${label}-`))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** `node BUNDLE ARGS` with exactly `env` (plus PATH and HOME), until it exits. */
const run = (bundle: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<Run>((resume) => {
    const child = execFile(
      process.execPath,
      ["--enable-source-maps", bundle, ...args],
      { cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env }, timeout: 240_000 },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : child.exitCode, stdout, stderr }))
    )
  })

const getJson = (port: number, path: string) =>
  Effect.map(request(port, { method: "GET", path }), (r) => ({ status: r.status, body: JSON.parse(r.body) }))

/** Every file and directory under `dir` with its permission bits. */
const modes = (dir: string): Array<{ path: string; mode: number; directory: boolean }> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = Path.join(dir, entry.name)
    const stat = statSync(path)
    const here = { path, mode: stat.mode & 0o777, directory: entry.isDirectory() }
    return entry.isDirectory() ? [here, ...modes(path)] : entry.isSocket() ? [] : [here]
  })

const sumCosts = (costs: ReadonlyArray<string | null | undefined>) =>
  costs.reduce((n, c) => n + BigInt(Math.round(Number(c ?? "0") * 1e12)), 0n)

/** TCP sockets the process listens on (its fds matched against /proc/net/tcp*, state 0A = LISTEN). */
const tcpListeners = (pid: number): number => {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return [/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? ""]
      } catch {
        return []
      }
    })
  )
  return ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((table) =>
    readFileSync(table, "utf8").split("\n").slice(1).map((line) => line.trim().split(/\s+/))
  ).filter((f) => f[3] === "0A" && inodes.has(f[9] ?? "")).length
}

/** Ledger rows and their exact total as the server reports them. */
const ledger = (port: number) =>
  Effect.all({ usage: getJson(port, "/v1/usage"), calls: getJson(port, "/v1/usage/calls?limit=500") }).pipe(
    Effect.map(({ calls, usage }) => ({
      odd: (calls.body.calls as ReadonlyArray<{ requestId: string | null }>).filter((c) => c.requestId === null),
      rows: usage.body.total.calls as number,
      costUsd: usage.body.total.costUsd as string,
      ids: (calls.body.calls as ReadonlyArray<{ requestId: string }>).map((c) => c.requestId).sort()
    }))
  )

describe("the embedded database under DATA_DIR has one owner", () => {
  it.scopedLive(
    "server and CLI on one DATA_DIR: every call has its row after a restart and a SIGKILL, a second server is refused in one line, nothing reachable over TCP or by other users",
    () =>
      Effect.gen(function*() {
        const bundles = yield* buildEntries
        const emulator = yield* makeEmulator()
        const dataDir = yield* tempDir("shared")
        const inputs = yield* tempDir("inputs")
        const env = {
          DATA_DIR: dataDir,
          OPENROUTER_BASE_URL: emulator.baseUrl,
          OPENROUTER_API_KEY: TEST_API_KEY,
          SUMMARY_CACHE_TTL_MS: "0",
          LOG_LEVEL: "warning"
        }
        const first = yield* startService(env, { readyTimeout: "180 seconds", bundle: bundles.main })

        const files = (i: number) => {
          const change = freshChange()
          writeFileSync(Path.join(inputs, `old-${i}.md`), change.before)
          writeFileSync(Path.join(inputs, `new-${i}.md`), change.after)
          return ["--before", Path.join(inputs, `old-${i}.md`), "--after", Path.join(inputs, `new-${i}.md`)]
        }
        const cliRuns = Effect.forEach([0, 1, 2], (i) => run(bundles.cli, files(i), env), { concurrency: 3 })
        const serverRuns = Effect.forEach(
          Array.from({ length: 6 }),
          () => Effect.map(postJson(first.port, "/v1/summaries", freshChange()), (r) => r.status),
          { concurrency: 2 }
        )
        const [clis, statuses] = yield* Effect.all([cliRuns, serverRuns], { concurrency: 2 })
        for (const c of clis) expect(c.code, c.stderr).toBe(0)
        expect(statuses).toEqual([200, 200, 200, 200, 200, 200])

        // Only the HTTP port listens on TCP; the database is a socket only this user can open.
        expect(tcpListeners(first.pid)).toBe(1)
        const socketDir = Path.join(dataDir, "socket")
        expect(statSync(socketDir).mode & 0o777).toBe(0o700)
        expect(statSync(Path.join(socketDir, ".s.PGSQL.5432")).mode & 0o777).toBe(0o600)
        const second = yield* run(bundles.main, [], { ...env, PORT: "0" })
        const secondLines = (second.stdout + second.stderr).trim().split("\n")
        expect(second.code).toBe(1)
        expect(secondLines).toEqual([
          `DATA_DIR ${dataDir} is in use by the policy-summarizer server (pid ${first.pid}, since ${secondLines[0]!.match(/since ([^)]+)\)/)?.[1]}); ` +
          "stop that process first, or give this one another DATA_DIR or a DATABASE_URL"
        ])
        expect((yield* getJson(first.port, "/health")).status).toBe(200)

        const upstream = emulator.calls.filter((c) => c.outcome === "success")
        const expected = {
          rows: upstream.length,
          costUsd: sumCosts(upstream.map((c) => c.usage?.cost)),
          ids: upstream.map((c) => c.generationId!).sort()
        }
        const stopped = yield* first.stop()
        const restarted = yield* startService(env, { readyTimeout: "180 seconds", bundle: bundles.main })
        const afterRestart = yield* ledger(restarted.port)
        yield* restarted.signal("SIGKILL")
        const killed = yield* restarted.exited
        const third = yield* startService(env, { readyTimeout: "180 seconds", bundle: bundles.main })
        const afterKill = yield* ledger(third.port)
        const health = yield* getJson(third.port, "/health")
        console.log(
          `[owner] server + 3 CLI runs on one DATA_DIR: ${emulator.completionCount()} upstream calls (${clis.length} CLI, ${statuses.length} server); ` +
            `after a restart ${afterRestart.rows} ledger rows (${expected.rows - afterRestart.rows} lost), after a SIGKILL ${afterKill.rows}; ` +
            `second server: exit ${second.code}, "${secondLines.join(" / ")}"`
        )
        if (afterRestart.odd.length > 0) console.log(JSON.stringify(afterRestart.odd), JSON.stringify(emulator.calls.map((c) => [c.outcome, c.generationId, c.at])))
        expect(stopped.code).toBe(0)
        expect(killed.signal).toBe("SIGKILL")
        expect(health.status).toBe(200)
        for (const seen of [afterRestart, afterKill]) {
          expect(seen.rows).toBe(expected.rows)
          expect(seen.ids).toEqual(expected.ids)
          expect(sumCosts([seen.costUsd])).toBe(expected.costUsd)
        }
        expect(emulator.completionCount()).toBe(9)

        yield* third.stop()
        const open = modes(dataDir).filter((f) => (f.mode & 0o077) !== 0)
        expect(open.map((f) => `${f.path} ${f.mode.toString(8)}`)).toEqual([])
        expect(modes(dataDir).filter((f) => f.directory).every((f) => f.mode === 0o700)).toBe(true)
      }),
    { timeout: 900_000 }
  )

  it.scopedLive("the CLI with no server running owns DATA_DIR for its run: its row is there for the server started afterwards, and nothing is left locked", () =>
    Effect.gen(function*() {
      const bundles = yield* buildEntries
      const emulator = yield* makeEmulator()
      const dataDir = yield* tempDir("cli-alone")
      const inputs = yield* tempDir("inputs")
      const env = { DATA_DIR: dataDir, OPENROUTER_BASE_URL: emulator.baseUrl, OPENROUTER_API_KEY: TEST_API_KEY, LOG_LEVEL: "warning" }
      const change = freshChange()
      writeFileSync(Path.join(inputs, "old.md"), change.before)
      writeFileSync(Path.join(inputs, "new.md"), change.after)
      const alone = yield* run(bundles.cli, ["--before", Path.join(inputs, "old.md"), "--after", Path.join(inputs, "new.md")], env)
      expect(alone.code, alone.stderr).toBe(0)
      // No owner.json: the CLI released DATA_DIR when it ended.
      expect(readdirSync(dataDir).sort()).toEqual([Path.basename(PriceTable.fileFor(dataDir, emulator.baseUrl)), "pglite", "socket", "spool"].sort())

      const server = yield* startService(env, { readyTimeout: "180 seconds", bundle: bundles.main })
      const seen = yield* ledger(server.port)
      expect(seen.rows).toBe(1)
      expect(seen.ids).toEqual(emulator.calls.map((c) => c.generationId).sort())
    }), { timeout: 600_000 })
})
