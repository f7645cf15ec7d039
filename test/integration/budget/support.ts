import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, TestServices } from "effect"
import type { CostAlert } from "../../../src/budget/AlertMessage.js"
import { format } from "../../../src/domain/Money.js"
import { MemoryLedger } from "./MemoryLedger.js"

/** Polls in real time (SQL and sockets run in real time even on the TestClock) until `done`, for at most ~5 s. */
export const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      const a = yield* effect
      if (done(a)) return a
      yield* TestServices.provideLive(Effect.sleep("10 millis"))
    }
    return yield* Effect.dieMessage("condition not reached within 5 s")
  })

/** `daily 0.5 2026-11-10`: an alert as a comparable line. */
export const line = (a: CostAlert) => `${a.budget} ${format(a.level)} ${a.period}`

export const resetTables = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`TRUNCATE cost_alerts, budget_reservations, llm_api_usage, llm_api_usage_daily, llm_api_usage_caller_daily`)

/**
 * A monitor layer's first run starts as the layer is built; waiting until it has read the ledger
 * (it holds the monitor's run lock from then on) makes every later `check` of the test the next run.
 */
export const firstRun = Effect.flatMap(MemoryLedger, (ledger) => eventually(ledger.spendCalls, (n) => n >= 1))
