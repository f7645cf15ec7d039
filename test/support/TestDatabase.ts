import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { PgClient } from "@effect/sql-pg"
import { ConfigProvider, Context, Data, Effect, Layer, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import pg from "pg"
import { Config } from "../../src/Config.js"
import * as Database from "../../src/db/Database.js"
import * as Migrations from "../../src/db/Migrations.js"
import { forSharing } from "../../src/db/SharedSession.js"

/**
 * The server the database tests use: `DATABASE_URL` when set (CI sets it). Without it each test
 * database is an embedded PGlite of its own, so a fresh clone's `npm test` needs no PostgreSQL.
 */
export const serverUrl = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
export const embeddedOnly = process.env["DATABASE_URL"] === undefined || process.env["DATABASE_URL"] === ""

export class TestDatabaseError extends Data.TaggedError("TestDatabaseError")<{ readonly message: string; readonly cause: unknown }> {}

/** Where the fresh database of this test lives, for tests that start a child process or a proxy in front of it. */
export class TestDatabase extends Context.Tag("test/TestDatabase")<TestDatabase, {
  readonly name: string
  readonly url: Redacted.Redacted<string>
  readonly host: string
  readonly port: number
}>() {}

const admin = (statement: string) =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: serverUrl })
      await client.connect()
      try {
        await client.query(statement)
      } finally {
        await client.end()
      }
    },
    catch: (cause) => new TestDatabaseError({ message: `${statement} failed on ${serverUrl.replace(/:[^:@/]*@/, ":***@")}`, cause })
  })

let counter = 0

/**
 * An empty embedded PGlite in a temporary directory, served on a loopback port for the test's own
 * processes and proxies (a test-only server: the service's embedded database uses a private socket).
 */
const createEmbedded = Effect.acquireRelease(
  Effect.tryPromise({
    try: async () => {
      const directory = mkdtempSync(Path.join(tmpdir(), "pglite-test-"))
      const db = await PGlite.create(directory)
      const server = new PGLiteSocketServer({ db: forSharing(db), host: "127.0.0.1", port: 0, maxConnections: 64 })
      await server.start()
      const port = Number(server.getServerConn().split(":").pop())
      return { directory, db, server, port }
    },
    catch: (cause) => new TestDatabaseError({ message: "Could not start an embedded PGlite", cause })
  }),
  ({ db, directory, server }) =>
    Effect.promise(async () => {
      await server.stop()
      await db.close()
      rmSync(directory, { recursive: true, force: true })
    })
).pipe(Effect.map(({ port }) => ({
  name: "postgres",
  url: Redacted.make(`postgres://postgres@127.0.0.1:${port}/postgres`),
  host: "127.0.0.1",
  port
})))

/** Creates an empty database with a name unique to this process and file; drops it when the scope closes. */
export const createDatabase = (label = "test") =>
  embeddedOnly ? createEmbedded : Effect.acquireRelease(
    Effect.gen(function*() {
      const name = `t_${label.replace(/[^a-z0-9]/gi, "_").toLowerCase().slice(0, 30)}_${process.pid}_${Date.now().toString(36)}_${counter++}`
      yield* admin(`CREATE DATABASE "${name}"`)
      const url = new URL(serverUrl)
      url.pathname = `/${name}`
      return {
        name,
        url: Redacted.make(url.toString()),
        host: url.hostname,
        port: Number(url.port || 5432)
      }
    }),
    ({ name }) => Effect.orDie(admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))
  )

/** A fresh database on the real server, migrated, dropped afterwards; also provides its `TestDatabase` address. */
export const layerWith = (label = "test") =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const db = yield* createDatabase(label)
    const client = PgClient.layer({ url: db.url, maxConnections: 10 })
    return Layer.merge(
      Layer.provideMerge(Migrations.layer, client),
      Layer.succeed(TestDatabase, db)
    )
  }))

export const layer = layerWith()

/** A fresh embedded PGlite in a temporary directory, migrated, removed afterwards. */
export const layerEmbedded = Layer.unwrapScoped(Effect.gen(function*() {
  const directory = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "pglite-test-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  return Layer.provideMerge(Migrations.layer, Database.embedded(directory))
}))

/** The whole `Config` from these variables alone (nothing leaks in from the real environment). */
export const configLayer = (overrides: ReadonlyMap<string, string> | Readonly<Record<string, string>> = new Map()) =>
  Config.layer.pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
      overrides instanceof Map ? new Map(overrides) : new Map(Object.entries(overrides))
    )))
  )
