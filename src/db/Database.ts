import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Data, Effect, Layer, Option, Redacted } from "effect"
import { mkdirSync } from "node:fs"
import * as Path from "node:path"
import { Config } from "../Config.js"
import * as Migrations from "./Migrations.js"

/** The embedded database could not be opened or served. */
export class EmbeddedDatabaseError extends Data.TaggedError("EmbeddedDatabaseError")<{
  readonly message: string
  readonly cause: unknown
}> {}

/** Bounds every connection attempt, so an unreachable server fails a write (and it spools) instead of hanging it. */
const connectTimeout = "5 seconds"

/** `host:port/database` and the user, never the password. */
export const describeUrl = (url: Redacted.Redacted<string>): string => {
  const parsed = new URL(Redacted.value(url))
  return `${parsed.username || "(default user)"}@${parsed.host}${parsed.pathname}`
}

/** A PostgreSQL server reached through a `postgres://` URL. */
export const fromUrl = (url: Redacted.Redacted<string>, options: { readonly maxConnections?: number } = {}) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    yield* Effect.logInfo("Using PostgreSQL").pipe(Effect.annotateLogs("database", describeUrl(url)))
    return PgClient.layer({ url, connectTimeout, ...options })
  }))

/** An embedded PGlite in `directory`, served on a loopback port for as long as the scope lives. */
export const serveEmbedded = (directory: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        mkdirSync(directory, { recursive: true })
        const db = await PGlite.create(directory)
        const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 4 })
        await server.start()
        const port = Number(server.getServerConn().split(":").pop())
        return { db, server, port }
      },
      catch: (cause) => new EmbeddedDatabaseError({ message: `Could not open the embedded database in ${directory}`, cause })
    }),
    ({ db, server }) => Effect.promise(() => server.stop().then(() => db.close()))
  )

/**
 * The embedded database behind the same `pg` driver as a real server. PGlite runs one session
 * underneath, so the pool holds one connection: a transaction can never interleave with another.
 */
export const embedded = (directory: string) =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const { port } = yield* serveEmbedded(directory)
    yield* Effect.logInfo("Using embedded PostgreSQL (PGlite)").pipe(
      Effect.annotateLogs({ directory, address: `127.0.0.1:${port}` })
    )
    return PgClient.layer({
      host: "127.0.0.1",
      port,
      database: "postgres",
      username: "postgres",
      maxConnections: 1,
      connectTimeout
    })
  }))

/** `DATABASE_URL` when set, otherwise the embedded database under `DATA_DIR/pglite`. */
export const clientLayer: Layer.Layer<
  SqlClient.SqlClient | PgClient.PgClient,
  SqlError | EmbeddedDatabaseError,
  Config
> = Layer.unwrapEffect(Effect.gen(function*() {
  const config = yield* Config
  return Option.match(config.database.url, {
    onSome: (url) => fromUrl(url),
    onNone: () => embedded(Path.resolve(config.database.dataDir, "pglite"))
  })
}))

/** The client with every migration applied. */
export const layer = Layer.provideMerge(Migrations.layer, clientLayer)
