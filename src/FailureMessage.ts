import { Cause, Option } from "effect"

const messageOf = (u: unknown): string | undefined => {
  if (typeof u !== "object" || u === null) return typeof u === "string" ? u : undefined
  const message = (u as { message?: unknown }).message
  return typeof message === "string" && message !== "" && message !== "An error has occurred" ? message : undefined
}

const causeOf = (u: unknown): unknown => (typeof u === "object" && u !== null ? (u as { cause?: unknown }).cause : undefined)

/** What to do, for the failures a start commonly meets, by tag. */
const hints: Readonly<Record<string, string>> = {
  SqlError: "check DATABASE_URL (host, port, user, password, database) and that the server is up",
  MigrationError: "check that DATABASE_URL's user may create tables",
  EmbeddedDatabaseError: "check that DATA_DIR exists and this user can write to it",
  SpoolError: "check that this user can write to DATA_DIR"
}

/**
 * One line for an operator: the failure's own message, then what caused it, innermost last
 * (`PgClient: Failed to connect: password authentication failed for user "x"`), without stack.
 */
export const oneLine = (cause: Cause.Cause<unknown>): string => {
  const failure = Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause))
  const parts: Array<string> = []
  let current: unknown = failure
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const message = messageOf(current)
    if (message !== undefined && !parts.some((p) => p.includes(message))) parts.push(message)
    current = causeOf(current)
  }
  const tag = typeof failure === "object" && failure !== null ? (failure as { _tag?: unknown })._tag : undefined
  const what = parts.length > 0 ? parts.join(": ") : typeof tag === "string" ? tag : "unknown error"
  const hint = typeof tag === "string" ? hints[tag] : undefined
  return (hint === undefined ? what : `${what}; ${hint}`).replace(/\s*\n\s*/g, " ")
}
