import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Data, Duration, Effect, Layer, Option, Redacted, Schedule } from "effect"
import * as fs from "node:fs/promises"
import * as Path from "node:path"
import { Config } from "../Config.js"
import * as DataDir from "./DataDir.js"
import * as Migrations from "./Migrations.js"
import * as Owner from "./Owner.js"
import { forSharing } from "./SharedSession.js"
import { DatabaseStartError, fromConnectFailure } from "./StartError.js"

export { DatabaseStartError } from "./StartError.js"

/** Bounds every connection attempt, so an unreachable server fails a write (and it spools) instead of hanging it. */
const connectTimeout = "5 seconds"

/** `host:port/database` and the user, never the password. */
export const describeUrl = (url: Redacted.Redacted<string>): string => {
  const parsed = new URL(Redacted.value(url))
  return `${parsed.username || "(default user)"}@${parsed.host}${parsed.pathname}`
}

/** A PostgreSQL server reached through a `postgres://` URL; a failed first connection is said in one line. */
export const fromUrl = (url: Redacted.Redacted<string>, options: { readonly maxConnections?: number } = {}) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    yield* Effect.logInfo("Using PostgreSQL").pipe(Effect.annotateLogs("database", describeUrl(url)))
    return PgClient.layer({ url, connectTimeout, ...options }).pipe(
      Layer.catchAll((error) => Layer.fail(fromConnectFailure(describeUrl(url), error)))
    )
  }))

/** `pg` reaches a Unix socket as `{host}/.s.PGSQL.{port}`, host being its directory. */
const socketPort = 5432
/** sun_path: 108 bytes with the terminating NUL on Linux (104 on macOS). */
const maxSocketPath = process.platform === "darwin" ? 103 : 107

/** Other CLIs or a starting server: how long a CLI waits for them before giving up. */
const waitForOwner = Duration.seconds(60)

/** Another CLI, or a server not yet serving: the CLI tries again shortly. */
class StillBusy extends Data.TaggedError("StillBusy")<{ readonly error: DatabaseStartError }> {}

const describeOwner = (owner: Owner.OwnerRecord) =>
  `${owner.role === "server" ? "the policy-summarizer server" : "the summarize CLI"} (pid ${owner.pid}, since ${owner.since})`

/**
 * Opens PGlite under `DATA_DIR/pglite` and serves it on a Unix socket in the 0700 directory
 * `DATA_DIR/socket`, so only this user's processes can reach it; the socket's directory goes into
 * the owner file for the CLI to find. Closes in reverse, tightening the files PGlite wrote.
 */
const serveEmbedded = (directory: string, record: Owner.OwnerRecord, ownerFile: string) =>
  Effect.gen(function*() {
    const pgliteDirectory = Path.join(directory, "pglite")
    const socketDirectory = yield* DataDir.privateDirectory(Path.join(directory, "socket"))
    const socketPath = Path.join(socketDirectory, `.s.PGSQL.${socketPort}`)
    if (Buffer.byteLength(socketPath) > maxSocketPath) {
      return yield* new DatabaseStartError({
        message: `DATA_DIR ${directory} is too long a path for the embedded database's socket ` +
          `(${socketPath} is ${Buffer.byteLength(socketPath)} bytes, at most ${maxSocketPath}); set DATA_DIR to a shorter path`
      })
    }
    yield* DataDir.privateDirectory(pgliteDirectory)
    const failed = (what: string, todo: string) => (cause: unknown) =>
      new DatabaseStartError({ message: `${what} (${cause instanceof Error ? cause.message : String(cause)}); ${todo}`, cause })
    const damaged = "if it is damaged, move it aside to start with an empty one, or set DATABASE_URL"
    const unserved = `check that ${socketDirectory} holds nothing else, or set DATABASE_URL`
    // Two resources, two acquires: a socket that cannot start still closes the database opened before it.
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        // Loaded only without DATABASE_URL: a server on PostgreSQL does not hold PGlite's code.
        try: () => import("@electric-sql/pglite").then(({ PGlite }) => PGlite.create(pgliteDirectory)),
        catch: failed(`Could not open the embedded database in ${pgliteDirectory}`, damaged)
      }),
      (db) => Effect.promise(() => db.close()).pipe(Effect.zipRight(DataDir.restrictTree(pgliteDirectory)))
    )
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          // A killed owner leaves its socket file behind; this process owns DATA_DIR now.
          await fs.rm(socketPath, { force: true })
          const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket")
          const server = new PGLiteSocketServer({ db: forSharing(db), path: socketPath, maxConnections: 8 })
          await server.start()
          return server
        },
        catch: failed(`Could not serve the embedded database on ${socketPath}`, unserved)
      }),
      (server) => Effect.promise(() => server.stop()).pipe(Effect.zipRight(Effect.promise(() => fs.rm(socketPath, { force: true }))))
    )
    yield* Effect.tryPromise({
      try: () => fs.chmod(socketPath, DataDir.fileMode),
      catch: failed(`Could not restrict the embedded database's socket ${socketPath}`, unserved)
    })
    yield* DataDir.restrictTree(pgliteDirectory)
    yield* Owner.update(ownerFile, { ...record, socketDirectory }).pipe(
      Effect.mapError((e) => new DatabaseStartError({ message: `Could not write ${e.file}: ${String(e.cause)}`, cause: e.cause }))
    )
    yield* Effect.logInfo("Using embedded PostgreSQL (PGlite)").pipe(
      Effect.annotateLogs({ directory: pgliteDirectory, socket: socketPath })
    )
    return socketDirectory
  })

/**
 * The socket directory of the embedded database for this process: its own when it can take
 * `DATA_DIR`, the running server's for the CLI; a second server stops with the owner named.
 */
const acquire = (directory: string, role: Owner.Role) =>
  Effect.gen(function*() {
    const ownerFile = Owner.fileIn(directory)
    const record = Owner.self(role)
    const busy = (owner: Owner.OwnerRecord) =>
      new DatabaseStartError({
        message: `DATA_DIR ${directory} is in use by ${describeOwner(owner)}; ` +
          (owner.role === "server" && role === "server"
            ? "stop that process first, or give this one another DATA_DIR or a DATABASE_URL"
            : "wait for it to finish, or give this one another DATA_DIR or a DATABASE_URL")
      })
    let waitingLogged = false
    const attempt = Effect.gen(function*() {
      const claim = yield* Owner.claim(ownerFile, record).pipe(
        Effect.mapError((e) => new DatabaseStartError({ message: `Could not take ${e.file}: ${String(e.cause)}`, cause: e.cause }))
      )
      if (claim._tag === "Owned") {
        yield* Effect.addFinalizer(() => Owner.release(ownerFile))
        return { socketDirectory: yield* serveEmbedded(directory, record, ownerFile), shared: Option.none<Owner.OwnerRecord>() }
      }
      const owner = claim.owner
      if (role === "server") return yield* busy(owner)
      if (owner.role === "server" && owner.socketDirectory !== null) {
        return { socketDirectory: owner.socketDirectory, shared: Option.some(owner) }
      }
      if (!waitingLogged) {
        waitingLogged = true
        yield* Effect.logWarning(`Waiting for ${describeOwner(owner)} to finish with DATA_DIR ${directory}`)
      }
      return yield* new StillBusy({ error: busy(owner) })
    })
    const { shared, socketDirectory } = yield* attempt.pipe(
      Effect.retry({ schedule: Schedule.spaced("200 millis").pipe(Schedule.upTo(waitForOwner)), while: (e) => e._tag === "StillBusy" }),
      Effect.mapError((e) => e._tag === "StillBusy" ? e.error : e)
    )
    if (Option.isSome(shared)) {
      yield* Effect.logInfo("Using the running server's embedded database").pipe(
        Effect.annotateLogs({ pid: shared.value.pid, socket: socketDirectory })
      )
    }
    return socketDirectory
  })

/**
 * The embedded database under `dataDir`, behind the same `pg` driver as a real server. PGlite
 * runs one session underneath, so the pool holds one connection: a transaction can never
 * interleave with another of this process. `role` says what to do when another process owns it.
 */
export const embedded = (dataDir: string, role: Owner.Role = "server") =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const directory = yield* DataDir.prepare(dataDir)
    const socketDirectory = yield* acquire(directory, role)
    return PgClient.layer({
      host: socketDirectory,
      port: socketPort,
      database: "postgres",
      username: "postgres",
      maxConnections: 1,
      connectTimeout
    }).pipe(Layer.catchAll((error) => Layer.fail(new DatabaseStartError({
      message: `Could not connect to the embedded database in ${directory} (${error.message}); try again, or set DATABASE_URL`,
      cause: error
    }))))
  }))

/** `DATABASE_URL` when set, otherwise the embedded database under `DATA_DIR/pglite`; `DATA_DIR` writable either way (spool, price table). */
export const clientLayerFor = (role: Owner.Role): Layer.Layer<
  SqlClient.SqlClient | PgClient.PgClient,
  SqlError | DatabaseStartError,
  Config
> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const config = yield* Config
    return Option.match(config.database.url, {
      onSome: (url) => Layer.unwrapEffect(Effect.as(DataDir.prepare(config.database.dataDir), fromUrl(url))),
      onNone: () => embedded(config.database.dataDir, role)
    })
  }))

export const clientLayer = clientLayerFor("server")

/** The client with every migration applied: for the server, owning an embedded database. */
export const layer = Layer.provideMerge(Migrations.layer, clientLayer)

/** The same for the CLI, which shares a running server's embedded database. */
export const cliLayer = Layer.provideMerge(Migrations.layer, clientLayerFor("cli"))
