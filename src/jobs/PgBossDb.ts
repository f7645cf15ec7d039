import { SqlClient } from "@effect/sql"
import { Effect, Runtime } from "effect"
import type PgBoss from "pg-boss"

/**
 * pg-boss's database adapter over the service's own SQL client, so the queue runs on whatever
 * database the service uses (a PostgreSQL server, or the embedded one through its socket) without
 * a second pool. Made inside `sql.withTransaction`, the runtime carries the transaction's
 * connection: queue rows are then written in the same transaction as the job's own rows.
 */
export const currentDb: Effect.Effect<PgBoss.Db, never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const run = Runtime.runPromise(yield* Effect.runtime<SqlClient.SqlClient>())
  return {
    executeSql: (text: string, values?: ReadonlyArray<unknown>) =>
      run(Effect.map(sql.unsafe(text, values ?? []), (rows) => ({ rows: rows as Array<any> })))
  }
})
