/**
 * The real service as a child process (`node --import tsx src/main.ts`, what `npm start` runs,
 * without tsx's wrapper process, so the pid, its signals and its memory are the service's own).
 * For tests that need what only a process has: signals, SIGKILL, restarts, RSS, its whole log.
 */
import { Data, Deferred, Duration, Effect, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { readFile } from "node:fs/promises"
import * as http from "node:http"
import * as net from "node:net"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))

export class ServiceProcessError extends Data.TaggedError("ServiceProcessError")<{
  readonly message: string
  /** The tail of the process's output, to see why. */
  readonly output: string
}> {}

export interface ExitStatus {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** Date.now() when the exit was seen. */
  readonly atMs: number
}

export interface ServiceProcess {
  readonly pid: number
  readonly port: number
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** Every line the process wrote so far, stdout and stderr interleaved as received. */
  readonly lines: () => ReadonlyArray<string>
  readonly hasExited: () => boolean
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Waits for the exit. */
  readonly exited: Effect.Effect<ExitStatus>
  /** SIGTERM, then SIGKILL if the process is still running after `killAfter` (default 15 s). */
  readonly stop: (killAfter?: Duration.DurationInput) => Effect.Effect<ExitStatus>
  /** VmRSS from /proc/PID/status, in kB. */
  readonly rssKb: Effect.Effect<number, ServiceProcessError>
}

export interface StartOptions {
  /** How long to wait for `GET /health` to answer 200 (default 30 s). */
  readonly readyTimeout?: Duration.DurationInput
  /** A port to listen on; a free one otherwise. */
  readonly port?: number
  /** A bundle of src/main.ts to run (see Build.ts) instead of the sources through tsx. */
  readonly bundle?: string
}

/** A port that was free a moment ago (PORT=0 would work, but its choice could not be read back). */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const probe = net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const { port } = probe.address() as net.AddressInfo
    probe.close(() => resume(Effect.succeed(port)))
  })
})

const healthy = (port: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/health", agent: false, timeout: 1_000 }, (res) => {
      res.resume()
      resume(Effect.succeed(res.statusCode === 200))
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resume(Effect.succeed(false)))
    return Effect.sync(() => req.destroy())
  })

/**
 * Starts the service with exactly `env` (plus PATH and HOME, and PORT), waits for `GET /health`,
 * and kills it with SIGKILL when the scope closes if it still runs.
 */
export const startService = (env: Readonly<Record<string, string>>, options: StartOptions = {}) =>
  Effect.gen(function*() {
    const port = options.port ?? (yield* freePort)
    const lines: Array<string> = []
    const exit = yield* Deferred.make<ExitStatus>()
    let exitStatus: ExitStatus | undefined

    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const proc: ChildProcess = spawn(process.execPath, options.bundle === undefined ? ["--import", "tsx", "src/main.ts"] : ["--enable-source-maps", options.bundle], {
          cwd: root,
          env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env, PORT: String(port) },
          stdio: ["ignore", "pipe", "pipe"]
        })
        for (const stream of [proc.stdout!, proc.stderr!]) {
          let partial = ""
          stream.setEncoding("utf8")
          stream.on("data", (chunk: string) => {
            const parts = (partial + chunk).split("\n")
            partial = parts.pop()!
            for (const line of parts) lines.push(line)
          })
          stream.on("end", () => {
            if (partial !== "") lines.push(partial)
            partial = ""
          })
        }
        proc.on("exit", (code, signal) => {
          exitStatus = { code, signal, atMs: Date.now() }
          Deferred.unsafeDone(exit, Effect.succeed(exitStatus))
        })
        return proc
      }),
      (proc) => exitStatus !== undefined ? Effect.void : Effect.sync(() => proc.kill("SIGKILL")).pipe(Effect.zipRight(Deferred.await(exit)))
    )

    const tail = () => lines.slice(-40).join("\n")
    const exited = Deferred.await(exit)

    const ready = Effect.gen(function*() {
      if (exitStatus !== undefined) {
        return yield* new ServiceProcessError({ message: `the service exited (code ${exitStatus.code}) before it was ready`, output: tail() })
      }
      if (!(yield* healthy(port))) return yield* new ServiceProcessError({ message: "not ready yet", output: "" })
    })
    yield* ready.pipe(
      Effect.retry({
        schedule: Schedule.spaced("100 millis").pipe(Schedule.upTo(options.readyTimeout ?? "30 seconds")),
        while: (e) => e.message === "not ready yet"
      }),
      Effect.mapError((e) => e.message === "not ready yet" ? new ServiceProcessError({ message: `GET /health did not answer 200 on port ${port}`, output: tail() }) : e)
    )

    const signal = (name: NodeJS.Signals) => Effect.sync(() => void (exitStatus === undefined && child.kill(name)))

    return {
      pid: child.pid!,
      port,
      url: `http://127.0.0.1:${port}`,
      lines: () => lines,
      hasExited: () => exitStatus !== undefined,
      signal,
      exited,
      stop: (killAfter = "15 seconds") =>
        signal("SIGTERM").pipe(
          Effect.zipRight(exited.pipe(
            Effect.timeout(killAfter),
            Effect.catchTag("TimeoutException", () => signal("SIGKILL").pipe(Effect.zipRight(exited)))
          ))
        ),
      rssKb: Effect.tryPromise({
        try: () => readFile(`/proc/${child.pid}/status`, "utf8"),
        catch: () => new ServiceProcessError({ message: `cannot read /proc/${child.pid}/status`, output: tail() })
      }).pipe(
        Effect.flatMap((status) => {
          const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]
          return kb === undefined
            ? Effect.fail(new ServiceProcessError({ message: "no VmRSS line", output: tail() }))
            : Effect.succeed(Number(kb))
        })
      )
    } satisfies ServiceProcess
  })

