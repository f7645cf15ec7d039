/**
 * Child processes for `bench/run.ts`: start, read JSON lines, wait for a port, stop. With
 * `BENCH_LOG_DIR` set, every line a child prints is also kept in a file there, one per child.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { appendFileSync } from "node:fs"
import { createServer, connect } from "node:net"
import type { AddressInfo } from "node:net"
import { createInterface } from "node:readline"

export const projectRoot = new URL("..", import.meta.url).pathname

export interface Child {
  readonly label: string
  readonly process: ChildProcess
  readonly pid: number
  /** The next JSON line the child prints on stdout. */
  readonly nextLine: () => Promise<any>
  /** Writes a line to its stdin and resolves with the JSON line it answers. */
  readonly ask: (command: string) => Promise<any>
  /** The last lines of its stderr and non-JSON stdout, for error messages. */
  readonly tail: () => string
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>
}

export const start = (
  label: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: Readonly<Record<string, string>>; readonly cwd?: string } = {}
): Child => {
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? projectRoot,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  const lines: Array<any> = []
  const waiting: Array<(line: any) => void> = []
  const tailLines: Array<string> = []
  const logDir = process.env["BENCH_LOG_DIR"]
  const logFile = logDir === undefined ? null : `${logDir}/${label.replace(/[^a-z0-9-]/gi, "_")}-${child.pid}.log`
  const keep = (line: string) => {
    if (logFile !== null) appendFileSync(logFile, `${line}\n`)
    tailLines.push(line)
    if (tailLines.length > 30) tailLines.shift()
  }
  createInterface({ input: child.stdout! }).on("line", (line) => {
    // JSON lines too: a service's log lines say why it exited.
    keep(line)
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch {
      return
    }
    const resolve = waiting.shift()
    if (resolve !== undefined) resolve(parsed)
    else lines.push(parsed)
  })
  createInterface({ input: child.stderr! }).on("line", keep)
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const nextLine = () => {
    const line = lines.shift()
    if (line !== undefined) return Promise.resolve(line)
    return Promise.race([
      new Promise<any>((resolve) => waiting.push(resolve)),
      exited.then((code) => {
        throw new Error(`${label} exited (code ${code}):\n${tailLines.join("\n")}`)
      })
    ])
  }
  return {
    label,
    process: child,
    pid: child.pid!,
    nextLine,
    ask: (command) => {
      child.stdin!.write(`${command}\n`)
      return nextLine()
    },
    tail: () => tailLines.join("\n"),
    exited
  }
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export const stop = async (child: Child, graceMs = 10_000): Promise<void> => {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  child.process.kill("SIGTERM")
  const timer = setTimeout(() => child.process.kill("SIGKILL"), graceMs)
  await child.exited
  clearTimeout(timer)
}

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

export const waitForPort = async (child: Child, port: number, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`${child.label} exited before listening:\n${child.tail()}`)
    if (await canConnect(port)) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${child.label} did not listen on ${port} within ${timeoutMs} ms:\n${child.tail()}`)
}
