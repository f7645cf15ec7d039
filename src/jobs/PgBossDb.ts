import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Runtime } from "effect"
import type PgBoss from "pg-boss"

/**
 * pg-boss's own transactions come as one text, `BEGIN; ...; COMMIT;` (installing its schema). Such
 * a text runs on a connection of its own, and one that failed midway is rolled back there, so the
 * pool never gets back a connection stuck in an aborted transaction (two replicas installing at
 * once: the second fails on an object the first made).
 */
const opensTransaction = /^\s*BEGIN\s*;/i

/**
 * pg-boss's database adapter over the service's own SQL client, so the queue runs on whatever
 * database the service uses (a PostgreSQL server, or the embedded one through its socket) without
 * a second pool. Made inside `sql.withTransaction`, the runtime carries the transaction's
 * connection: queue rows are then written in the same transaction as the job's own rows.
 */
export const currentDb: Effect.Effect<PgBoss.Db, never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const run = Runtime.runPromise(yield* Effect.runtime<SqlClient.SqlClient>())
  const ownTransaction = (text: string) =>
    Effect.scoped(Effect.flatMap(sql.reserve, (connection) =>
      connection.executeUnprepared(text, [], undefined).pipe(
        Effect.tapError(() => Effect.ignore(connection.executeRaw("ROLLBACK", [])))
      )))
  return {
    executeSql: (text: string, values?: ReadonlyArray<unknown>) =>
      run(Effect.map(
        (values === undefined || values.length === 0) && opensTransaction.test(text) ? ownTransaction(text) : sql.unsafe(text, values ?? []),
        (rows) => ({ rows: rows as Array<any> })
      ))
  }
})
