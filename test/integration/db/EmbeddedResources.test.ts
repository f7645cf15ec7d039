/**
 * The embedded database and the socket that serves it are two resources, acquired one after the
 * other and released in reverse: a socket that cannot start must not leave the database open.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import * as Database from "../../../src/db/Database.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "embedded-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Every file under `directory` with its permission bits. */
const modes = (directory: string): Array<string> =>
  readdirSync(directory, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const path = Path.join(entry.parentPath, entry.name)
      return `${Path.relative(directory, path)} ${(statSync(path).mode & 0o777).toString(8)}`
    })

const withDatabase = <A, E>(dataDir: string, use: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(Layer.build(Database.embedded(dataDir)), (context) => use(Context.get(context, SqlClient.SqlClient))))

describe("the embedded database's resources", () => {
  it.scoped("a socket that cannot start stops the start with one line, and the database opened before it is closed", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir
      yield* withDatabase(dataDir, (sql) => Effect.zipRight(sql`CREATE TABLE kept (n integer)`, sql`INSERT INTO kept VALUES (42)`))
      // Something that is not a socket, and cannot be removed as one, where the socket goes.
      const blocked = Path.join(dataDir, "socket", ".s.PGSQL.5432")
      mkdirSync(Path.join(blocked, "in-the-way"), { recursive: true })

      const error = yield* Effect.flip(withDatabase(dataDir, () => Effect.void))
      expect(error._tag).toBe("DatabaseStartError")
      expect(error.message).toMatch(/^Could not serve the embedded database on .*\.s\.PGSQL\.5432 \(.+\); check that .* holds nothing else, or set DATABASE_URL$/)
      // Closed, as closing leaves it: every file PGlite wrote is this user's only.
      const pglite = Path.join(dataDir, "pglite")
      expect(modes(pglite).filter((line) => !line.endsWith(" 600"))).toEqual([])

      // Once the way is clear it opens again, with what the first start wrote.
      rmSync(blocked, { recursive: true })
      const rows = yield* withDatabase(dataDir, (sql) => sql<{ n: number }>`SELECT n FROM kept`)
      expect(rows).toEqual([{ n: 42 }])
    }), 60_000)
})
