import { Effect } from "effect"
import * as net from "node:net"

/** A loopback TCP proxy a test owns, to cut the line to a real server and restore it. */
export interface TcpProxy {
  readonly port: number
  /** Drops every open connection and refuses new ones until `restore`. */
  readonly cut: () => void
  readonly restore: () => void
  readonly connections: () => number
}

export const makeTcpProxy = (target: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.async<{ readonly proxy: TcpProxy; readonly server: net.Server; readonly sockets: Set<net.Socket> }>((resume) => {
      let open = true
      const sockets = new Set<net.Socket>()
      const track = (s: net.Socket) => {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
        s.on("error", () => s.destroy())
      }
      const server = net.createServer((client) => {
        track(client)
        if (!open) return client.destroy()
        const upstream = net.connect(target.port, target.host)
        track(upstream)
        client.pipe(upstream)
        upstream.pipe(client)
        client.on("close", () => upstream.destroy())
        upstream.on("close", () => client.destroy())
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address() as net.AddressInfo
        resume(Effect.succeed({
          server,
          sockets,
          proxy: {
            port: address.port,
            cut: () => {
              open = false
              for (const s of sockets) s.destroy()
            },
            restore: () => {
              open = true
            },
            connections: () => sockets.size
          }
        }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ proxy }) => proxy))
