import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import type { Columns } from "../../../src/usage/LedgerRow.js"
import * as Spool from "../../../src/usage/Spool.js"

const row = (id: string): Columns => ({
  id,
  model: "openai/gpt-4o-mini",
  provider: "OpenAI",
  prompt_tokens: 10,
  completion_tokens: 5,
  total_tokens: 15,
  cost_usd: "0.00001",
  cost_source: "provider",
  request_id: `gen-${id}`,
  created_at: "2026-12-02T10:00:00.000Z",
  status: "success",
  error_code: null,
  attempt: 1,
  latency_ms: 100,
  purpose: "summary",
  caller: null,
  job_item_id: null
})

const lines = (...ids: ReadonlyArray<string>) => ids.map((id) => JSON.stringify(row(id)) + "\n").join("")

/** A pid no process has (above Linux's pid_max). */
const gonePid = 4_194_399

const scratch = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "spool-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("the spool shared by the processes of one DATA_DIR", () => {
  it.scoped("replays what a process that is gone left (its own file, a replay it did not finish), never a running process's file", () =>
    Effect.gen(function*() {
      const dir = yield* scratch
      // The parent process runs: its file is still being appended to.
      const running = Path.join(dir, `current-${process.ppid}.jsonl`)
      writeFileSync(Path.join(dir, `current-${gonePid}.jsonl`), lines("a", "b"))
      writeFileSync(Path.join(dir, `replaying-${gonePid}-segment-000000000000001-${gonePid}-000000.jsonl`), lines("c"))
      writeFileSync(running, lines("z"))

      const spool = yield* Spool.make(dir)
      expect(yield* spool.depth).toBe(3)
      const inserted: Array<string> = []
      yield* spool.append([row("d")])
      const replayed = yield* spool.replay((rows) => Effect.sync(() => inserted.push(...rows.map((r) => r.id))))

      expect(replayed).toBe(4)
      expect(inserted.sort()).toEqual(["a", "b", "c", "d"])
      expect(readdirSync(dir)).toEqual([Path.basename(running)])
      expect(existsSync(running)).toBe(true)
      expect(yield* spool.depth).toBe(0)
    }))

  it.scoped("a replay whose insert fails puts the segment back for the next replay, and nothing is lost", () =>
    Effect.gen(function*() {
      const dir = yield* scratch
      const spool = yield* Spool.make(dir)
      yield* spool.append([row("a")])
      const failed = yield* Effect.either(spool.replay(() => Effect.fail("database down")))
      expect(failed._tag).toBe("Left")
      expect(readdirSync(dir).filter((n) => n.startsWith("segment-"))).toHaveLength(1)

      const inserted: Array<string> = []
      yield* spool.replay((rows) => Effect.sync(() => inserted.push(...rows.map((r) => r.id))))
      expect(inserted).toEqual(["a"])
      expect(readdirSync(dir)).toEqual([])
    }))
})
