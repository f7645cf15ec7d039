/**
 * HTTP for the reliability checks: one fresh connection per request (so "new connections are
 * refused" means what it says), and a raw socket form that can send bytes no HTTP client would.
 */
import { Data, Effect } from "effect"
import * as http from "node:http"
import * as net from "node:net"

export interface Reply {
  readonly status: number
  readonly body: string
  readonly headers: http.IncomingHttpHeaders
}

/** No HTTP answer: the connection was refused, reset, or timed out. `code` is e.g. ECONNREFUSED. */
export class NoReply extends Data.TaggedError("NoReply")<{ readonly code: string; readonly message: string }> {}

export interface RequestOptions {
  readonly method?: string
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Buffer
  readonly timeoutMs?: number
}

export const request = (port: number, options: RequestOptions): Effect.Effect<Reply, NoReply> =>
  Effect.async<Reply, NoReply>((resume) => {
    const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body)
    const req = http.request({
      host: "127.0.0.1",
      port,
      method: options.method ?? "GET",
      path: options.path,
      agent: false,
      headers: { ...(body === undefined ? {} : { "content-length": String(body.length) }), ...options.headers },
      timeout: options.timeoutMs ?? 60_000
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers })))
      res.on("error", (e: NodeJS.ErrnoException) => resume(Effect.fail(new NoReply({ code: e.code ?? "EBODY", message: e.message }))))
    })
    req.on("timeout", () => req.destroy(Object.assign(new Error("client timeout"), { code: "ETIMEDOUT" })))
    req.on("error", (e: NodeJS.ErrnoException) => resume(Effect.fail(new NoReply({ code: e.code ?? "EUNKNOWN", message: e.message }))))
    req.end(body)
    return Effect.sync(() => req.destroy())
  })

export const postJson = (port: number, path: string, body: unknown, headers: Readonly<Record<string, string>> = {}, timeoutMs = 60_000) =>
  request(port, { method: "POST", path, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body), timeoutMs })

export interface RawReply {
  /** The status of the answer, or null when the connection ended without one. */
  readonly status: number | null
  /** How the connection ended when no status came: e.g. ECONNRESET, EPIPE, "closed", "timeout". */
  readonly ending: string
}

/**
 * Writes `bytes` on a new connection (send `Connection: close` in them) and reads the status line of the answer. The server may
 * answer (and close) before every byte is written, as a 413 does: the status still counts.
 */
export const rawRequest = (port: number, bytes: Buffer, timeoutMs = 10_000): Effect.Effect<RawReply> =>
  Effect.async<RawReply>((resume) => {
    let received = ""
    let done = false
    const finish = (ending: string) => {
      if (done) return
      done = true
      socket.destroy()
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1]
      resume(Effect.succeed({ status: status === undefined ? null : Number(status), ending }))
    }
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes))
    socket.setTimeout(timeoutMs, () => finish("timeout"))
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1")
      // The status line is all this needs; the rest of a long answer is not waited for.
      if (received.includes("\r\n\r\n")) finish("answered")
    })
    socket.on("error", (e: NodeJS.ErrnoException) => finish(e.code ?? "error"))
    socket.on("close", () => finish("closed"))
    return Effect.sync(() => finish("interrupted"))
  })
