import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import pg from "pg"
import { forSharing } from "../../../src/db/SharedSession.js"

/**
 * Two connections (the server's pool and the CLI) on the one PGlite session, each running
 * parameterized statements: every answer must be its own. `share` is how PGlite is handed to the
 * socket server.
 */
const interleaved = (share: (db: PGlite) => PGlite) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const directory = mkdtempSync(Path.join(tmpdir(), "shared-session-"))
      const db = await PGlite.create(directory)
      const path = Path.join(directory, ".s.PGSQL.5432")
      const server = new PGLiteSocketServer({ db: share(db), path, maxConnections: 4 })
      await server.start()
      return { directory, db, server }
    }),
    ({ directory }) =>
      Effect.promise(async () => {
        const clients = [0, 1].map(() => new pg.Client({ host: directory, port: 5432, user: "postgres", database: "postgres" }))
        await Promise.all(clients.map((c) => c.connect()))
        let wrong = 0
        let failed = 0
        await Promise.all(clients.map(async (client, who) => {
          for (let i = 0; i < 60; i++) {
            // Different statements, so a Bind landing on the other's Parse shows. The first
            // client's parameters (like a large ledger batch) arrive in several socket reads.
            const text = who === 0 ? "SELECT length($1::text) AS v" : "SELECT length($1::text) + 1000000 AS v"
            const parameter = "x".repeat(who === 0 ? 300_000 + i : i + 1)
            try {
              const result = await client.query(text, [parameter])
              if (result.rows[0]?.v !== parameter.length + who * 1_000_000) wrong++
            } catch {
              failed++
            }
          }
        }))
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)))
        return { wrong, failed }
      }),
    ({ db, directory, server }) =>
      Effect.promise(async () => {
        await server.stop()
        await db.close()
        rmSync(directory, { recursive: true, force: true })
      })
  )

describe("the embedded database shared over its socket", () => {
  it.live("two connections' parameterized statements never mix: every answer is the asker's", () =>
    Effect.gen(function*() {
      const shared = yield* interleaved(forSharing)
      console.log(`[shared-session] 2 x 60 statements: ${shared.wrong} wrong answers, ${shared.failed} errors`)
      expect(shared).toEqual({ wrong: 0, failed: 0 })
    }), 120_000)
})
