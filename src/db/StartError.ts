import { Data } from "effect"

/**
 * Why the service cannot use its database, as one line an operator can act on (what is wrong,
 * then what to do). The cause is kept for `LOG_LEVEL=debug`.
 */
export class DatabaseStartError extends Data.TaggedError("DatabaseStartError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** The `pg` / Node error behind a failed connection, however deeply wrapped. */
const rootCause = (cause: unknown): { readonly code?: string; readonly message?: string } => {
  let current: unknown = cause
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const c = current as { code?: unknown; cause?: unknown; errors?: ReadonlyArray<unknown> }
    if (typeof c.code === "string") return current as { code: string; message?: string }
    current = c.errors?.[0] ?? c.cause
  }
  return typeof current === "object" && current !== null ? (current as { message?: string }) : {}
}

/** A failed first connection to `DATABASE_URL`, said plainly. */
export const fromConnectFailure = (target: string, cause: unknown): DatabaseStartError => {
  const root = rootCause(cause)
  const message = (() => {
    switch (root.code) {
      case "ECONNREFUSED":
        return `Cannot reach PostgreSQL at ${target}: connection refused; check the host and port in DATABASE_URL and that the server runs`
      case "ENOTFOUND":
      case "EAI_AGAIN":
        return `Cannot reach PostgreSQL at ${target}: the host name does not resolve; check the host in DATABASE_URL`
      case "ETIMEDOUT":
      case "EHOSTUNREACH":
      case "ENETUNREACH":
        return `Cannot reach PostgreSQL at ${target}: no answer; check the host and port in DATABASE_URL and the network`
      case "28P01":
      case "28000":
        return `PostgreSQL at ${target} refused the login (${root.message ?? "authentication failed"}); check the user and password in DATABASE_URL`
      case "3D000":
        return `PostgreSQL at ${target}: ${root.message ?? "the database does not exist"}; create it or fix the database name in DATABASE_URL`
      default:
        return /timeout/i.test(root.message ?? "")
          ? `Cannot reach PostgreSQL at ${target}: no answer within the connect timeout; check the host and port in DATABASE_URL and the network`
          : `Cannot use PostgreSQL at ${target}: ${root.code ? `${root.code} ` : ""}${root.message ?? "connection failed"}; check DATABASE_URL`
    }
  })()
  return new DatabaseStartError({ message, cause })
}
