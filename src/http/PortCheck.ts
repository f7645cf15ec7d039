import { Data, Effect } from "effect"
import * as net from "node:net"

/** The port the API should listen on is taken by another process. */
export class PortInUse extends Data.TaggedError("PortInUse")<{ readonly host: string; readonly port: number }> {
  override get message() {
    return `port ${this.port} on ${this.host} is already in use; set PORT`
  }
}

/** The host cannot be listened on at all (not an address of this machine, or not allowed). */
export class CannotListen extends Data.TaggedError("CannotListen")<{ readonly host: string; readonly port: number; readonly code: string }> {
  override get message() {
    return this.code === "EACCES"
      ? `port ${this.port} on ${this.host} needs privileges this process does not have; set PORT above 1023`
      : `cannot listen on ${this.host}:${this.port} (${this.code}); set HOST to an address of this machine`
  }
}

const codeOf = (cause: unknown): string | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/** A listen error (possibly wrapped, as the platform's `ServeError` wraps it) as one of the above. */
export const listenError = (host: string, port: number, cause: unknown): PortInUse | CannotListen | undefined => {
  const code = codeOf(cause)
  if (code === "EADDRINUSE") return new PortInUse({ host, port })
  if (code === "EACCES" || code === "EADDRNOTAVAIL" || code === "ENOTFOUND") return new CannotListen({ host, port, code })
  return undefined
}

/**
 * Binds the port for a moment and lets it go, so a taken port stops the start before the database
 * is opened and migrated. Port 0 (any free port) needs no check.
 */
export const ensurePortFree = (host: string, port: number): Effect.Effect<void, PortInUse | CannotListen> =>
  port === 0
    ? Effect.void
    : Effect.async<void, PortInUse | CannotListen>((resume) => {
      const probe = net.createServer()
      probe.once("error", (cause) => {
        const known = listenError(host, port, cause)
        // Anything else is left for the real listen to report.
        resume(known === undefined ? Effect.void : Effect.fail(known))
      })
      probe.listen({ host, port, exclusive: true }, () => probe.close(() => resume(Effect.void)))
    })
