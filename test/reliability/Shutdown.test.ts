import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { readdirSync, statSync } from "node:fs"
import * as net from "node:net"
import * as Path from "node:path"
import { makeEmulator } from "../support/OpenRouterEmulator.js"
import { startService } from "../support/ServiceProcess.js"
import { makeTcpProxy } from "../support/TcpProxy.js"
import { postJson } from "./Client.js"
import {
  count,
  eventually,
  freshChange,
  freshDatabase,
  ledgerRows,
  outcomeOf,
  readiness,
  refOf,
  refsUpstream,
  report,
  serviceEnv,
  sized,
  tally,
  tempDir,
  viaPort
} from "./support.js"

const graceMs = 5_000

interface Sent {
  readonly ref: string
  readonly startedAt: number
  readonly endedAt: number
  readonly outcome: string
}

/** The spool's bytes on disk under DATA_DIR. */
const spoolBytes = (dataDir: string) => {
  const dir = Path.join(dataDir, "spool")
  return readdirSync(dir).reduce((n, f) => n + statSync(Path.join(dir, f)).size, 0)
}

describe("process shutdown", () => {
  it.scopedLive("SIGTERM in the middle of load: requests in flight are answered, new connections refused or answered, exit 0 within the grace period, ledger complete", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator({ latencyMs: 200 })
      const db = yield* freshDatabase("sigterm")
      const dataDir = yield* tempDir("sigterm")
      const service = yield* startService(serviceEnv(emulator, db.url, dataDir, { SHUTDOWN_GRACE_MS: String(graceMs) }))

      let running = true
      const sent: Array<Sent> = []
      const worker = Effect.whileLoop({
        while: () => running,
        body: () =>
          Effect.gen(function*() {
            const change = freshChange()
            const startedAt = Date.now()
            // A request left without an answer shows up as ETIMEDOUT, well after the grace period.
            const result = yield* Effect.either(postJson(service.port, "/v1/summaries", change, {}, graceMs + 5_000))
            const outcome = outcomeOf(result._tag === "Right" ? result.right : result.left)
            // A refused connection comes back at once: do not spin.
            if (result._tag === "Left") yield* Effect.sleep("20 millis")
            return { ref: refOf(change), startedAt, endedAt: Date.now(), outcome }
          }),
        step: (s) => sent.push(s)
      })
      const load = yield* Effect.fork(Effect.all(Array.from({ length: 32 }, () => worker), { concurrency: "unbounded", discard: true }))

      yield* Effect.sleep("1500 millis")
      const signalAt = Date.now()
      yield* service.signal("SIGTERM")
      const exited = yield* service.exited.pipe(Effect.timeoutOption(graceMs + 5_000))
      yield* Effect.sleep("500 millis")
      running = false
      yield* Fiber.join(load)
      if (exited._tag === "None") yield* report(`SIGTERM: still running ${graceMs + 5_000} ms after the signal; its last log lines:\n${service.lines().slice(-15).join("\n")}`)
      const exit = exited._tag === "Some" ? exited.value : yield* service.stop("1 second")

      // In flight: the service had passed the request upstream before the signal came.
      const upstream = refsUpstream(emulator, signalAt)
      const inFlight = sent.filter((s) => upstream.has(s.ref))
      const waiting = sent.filter((s) => s.startedAt < signalAt && !upstream.has(s.ref))
      const after = sent.filter((s) => s.startedAt >= signalAt)
      // Neither answered nor refused: held open by the service for a second or more, then dropped.
      const held = sent.filter((s) => !s.outcome.startsWith("200 ") && s.endedAt - s.startedAt >= 1_000)
      const calls = emulator.completionCount()
      const rows = yield* ledgerRows(db.url)
      const tookMs = exit.atMs - signalAt
      yield* report(
        `SIGTERM: ${inFlight.length} requests in flight upstream at the signal (${tally(inFlight.map((s) => s.outcome))}), ` +
          `${waiting.length} sent but not yet upstream (${tally(waiting.map((s) => s.outcome))}), ${after.length} sent after it (${tally(after.map((s) => s.outcome))}); ` +
          `${held.length} held unanswered for a second or more (${tally(held.map((s) => `${s.outcome} after ${Math.round((s.endedAt - signalAt) / 100) / 10} s`))}); ` +
          `exit code ${exit.code} signal ${exit.signal} ${tookMs} ms after SIGTERM (grace ${graceMs} ms); ${calls} upstream calls, ${rows} ledger rows`
      )
      expect(inFlight.length).toBeGreaterThan(16)
      expect(count(inFlight, (s) => !s.outcome.startsWith("200 ")), tally(inFlight.map((s) => s.outcome))).toBe(0)
      // Not yet begun, or sent after the signal: answered, refused (no listener, a reset of a connection
      // accepted a moment before the listener closed, or a 503 saying so); never left hanging.
      const clean = (s: Sent) => s.outcome.startsWith("200 ") || ["ECONNREFUSED", "ECONNRESET", "503"].includes(s.outcome)
      expect(count(waiting, (s) => !clean(s)), tally(waiting.map((s) => s.outcome))).toBe(0)
      expect(count(after, (s) => !clean(s)), tally(after.map((s) => s.outcome))).toBe(0)
      expect(count(after, (s) => s.outcome === "ECONNREFUSED")).toBeGreaterThan(0)
      expect(held.map((s) => `${s.outcome} after ${s.endedAt - signalAt} ms`), "requests left hanging instead of answered or refused").toEqual([])
      expect(exit.code).toBe(0)
      expect(tookMs).toBeLessThanOrEqual(graceMs + 1_000)
      expect(rows).toBe(calls)
    }))

  it.scopedLive("SIGTERM with a request that never completes: the grace period still ends, the process exits 0 and that connection is closed", () =>
    Effect.gen(function*() {
      const shortGraceMs = 2_000
      const emulator = yield* makeEmulator()
      const db = yield* freshDatabase("sigterm_stall")
      const dataDir = yield* tempDir("sigterm-stall")
      const service = yield* startService(serviceEnv(emulator, db.url, dataDir, { SHUTDOWN_GRACE_MS: String(shortGraceMs) }))
      // The headers and a tenth of the body: the service has begun the request and waits for the rest.
      const stalled = yield* Effect.acquireRelease(
        Effect.async<net.Socket>((resume) => {
          const socket = net.connect(service.port, "127.0.0.1", () => {
            socket.write("POST /v1/summaries HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"diff\":")
            resume(Effect.succeed(socket))
          })
          socket.on("error", () => {})
        }),
        (socket) => Effect.sync(() => socket.destroy())
      )
      let closedAt: number | undefined
      stalled.on("close", () => (closedAt = Date.now()))
      yield* Effect.sleep("300 millis")
      const signalAt = Date.now()
      yield* service.signal("SIGTERM")
      const exited = yield* service.exited.pipe(Effect.timeoutOption(shortGraceMs + 8_000))
      const exit = exited._tag === "Some" ? exited.value : yield* service.stop("1 second")
      yield* report(
        `SIGTERM with a stalled request: ${exited._tag === "Some" ? `exit code ${exit.code} ${exit.atMs - signalAt} ms after SIGTERM` : `still running ${shortGraceMs + 8_000} ms after SIGTERM (killed)`} ` +
          `(grace ${shortGraceMs} ms); the stalled connection ${closedAt === undefined ? "was never closed" : `was closed ${closedAt - signalAt} ms after SIGTERM`}`
      )
      expect(exited._tag, "the process exits once the grace period is over").toBe("Some")
      expect(exit.code).toBe(0)
      expect(exit.atMs - signalAt).toBeLessThanOrEqual(shortGraceMs + 1_000)
    }))

  it.scopedLive("SIGKILL while the database is cut: the spooled rows survive on disk and the restarted service replays them, the ledger is exact", () =>
    Effect.gen(function*() {
      const emulator = yield* makeEmulator()
      const db = yield* freshDatabase("sigkill")
      const proxy = yield* makeTcpProxy({ host: db.host, port: db.port })
      const dataDir = yield* tempDir("sigkill")
      const env = serviceEnv(emulator, viaPort(db.url, proxy.port), dataDir)
      const first = yield* startService(env)
      const summarize = (n: number) =>
        Effect.forEach(
          Array.from({ length: n }),
          () => Effect.map(Effect.either(postJson(first.port, "/v1/summaries", freshChange())), (r) => outcomeOf(r._tag === "Right" ? r.right : r.left)),
          { concurrency: 8 }
        )

      const connected = yield* summarize(20)
      proxy.cut()
      const whileCut = yield* summarize(sized(40, 150))
      const depth = (yield* readiness(first.port)).spoolDepth ?? 0
      const onDisk = spoolBytes(dataDir)
      const committed = yield* ledgerRows(db.url)
      yield* first.signal("SIGKILL")
      const killed = yield* first.exited
      proxy.restore()

      const second = yield* startService(env)
      yield* eventually("the spool to replay", Effect.map(readiness(second.port), (r) => r.status === 200 && r.spoolDepth === 0))
      const calls = emulator.completionCount()
      const rows = yield* ledgerRows(db.url)
      yield* report(
        `SIGKILL: ${connected.length} requests with the database up (${tally(connected)}), ${whileCut.length} while cut (${tally(whileCut)}); ` +
          `spool depth ${depth} (${onDisk} bytes on disk), ${committed} rows committed before the kill (${killed.signal}); ` +
          `after restart ${rows} ledger rows for ${calls} upstream calls, ${calls - rows} lost`
      )
      expect(count([...connected, ...whileCut], (o) => !o.startsWith("200 "))).toBe(0)
      expect(killed.signal).toBe("SIGKILL")
      expect(depth).toBeGreaterThan(0)
      expect(onDisk).toBeGreaterThan(0)
      expect(committed).toBeLessThan(calls)
      expect(rows).toBe(calls)
    }))
})
