import { Data, Effect, Either, Ref, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as Path from "node:path"
import { type Columns, SpoolLine } from "./LedgerRow.js"

export class SpoolError extends Data.TaggedError("SpoolError")<{ readonly message: string; readonly cause: unknown }> {}

/**
 * Ledger rows the database could not take, in append-only JSON-lines files under one directory.
 * New rows go to `current.jsonl`; a replay first renames it to a numbered segment, so appends and
 * replays never touch the same file, and a segment is deleted only once all its rows are in the
 * database. A crash mid-append can leave a torn last line: it never decodes, and since `current` is
 * rotated at every start nothing is ever appended after it.
 */
export interface Spool {
  /** Returns once the rows are on disk (fsync'd). */
  readonly append: (rows: ReadonlyArray<Columns>) => Effect.Effect<void, SpoolError>
  /** Rows waiting to be replayed. */
  readonly depth: Effect.Effect<number>
  /** Hands every spooled row to `insert`, oldest segment first, a chunk at a time; returns how many rows went in. */
  readonly replay: <E>(
    insert: (rows: ReadonlyArray<Columns>) => Effect.Effect<void, E>
  ) => Effect.Effect<number, E | SpoolError>
}

const chunkSize = 500

const attempt = <A>(message: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new SpoolError({ message, cause }) })

const syncDirectory = (directory: string) =>
  attempt(`Could not sync ${directory}`, async () => {
    const handle = await fs.open(directory, "r")
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  })

const readRows = (file: string) =>
  Effect.gen(function*() {
    const text = yield* attempt(`Could not read ${file}`, () => fs.readFile(file, "utf8"))
    const rows: Array<Columns> = []
    let torn = 0
    for (const line of text.split("\n")) {
      if (line.length === 0) continue
      Either.match(Schema.decodeUnknownEither(SpoolLine)(line), {
        onLeft: () => torn++,
        onRight: (row) => rows.push(row)
      })
    }
    if (torn > 0) yield* Effect.logWarning("Skipped unreadable spool lines").pipe(Effect.annotateLogs({ file, lines: torn }))
    return rows
  })

export const make = (directory: string): Effect.Effect<Spool, SpoolError> =>
  Effect.gen(function*() {
    const current = Path.join(directory, "current.jsonl")
    const lock = yield* Effect.makeSemaphore(1)
    let sequence = 0

    yield* attempt(`Could not create ${directory}`, () => fs.mkdir(directory, { recursive: true }))

    const segments = attempt(`Could not list ${directory}`, () => fs.readdir(directory)).pipe(
      Effect.map((names) => names.filter((n) => /^segment-\d+-\d+\.jsonl$/.test(n)).sort().map((n) => Path.join(directory, n)))
    )

    const rotate = Effect.gen(function*() {
      const size = yield* attempt(`Could not stat ${current}`, () => fs.stat(current).then((s) => s.size, () => 0))
      if (size === 0) return
      const name = `segment-${String(Date.now()).padStart(15, "0")}-${String(sequence++).padStart(6, "0")}.jsonl`
      yield* attempt(`Could not rotate ${current}`, () => fs.rename(current, Path.join(directory, name)))
      yield* syncDirectory(directory)
    })

    yield* rotate
    const initial = yield* Effect.forEach(yield* segments, readRows)
    const depth = yield* Ref.make(initial.reduce((n, rows) => n + rows.length, 0))

    const append = (rows: ReadonlyArray<Columns>) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const created = yield* attempt(`Could not stat ${current}`, () => fs.access(current).then(() => false, () => true))
        const text = rows.map((r) => JSON.stringify(r) + "\n").join("")
        yield* attempt(`Could not append to ${current}`, async () => {
          const handle = await fs.open(current, "a")
          try {
            await handle.write(text)
            await handle.sync()
          } finally {
            await handle.close()
          }
        }).pipe(
          // A half-written line must not have later rows glued to it.
          Effect.tapError(() => Effect.ignore(rotate))
        )
        if (created) yield* syncDirectory(directory)
        yield* Ref.update(depth, (n) => n + rows.length)
      }))

    const replay = <E>(insert: (rows: ReadonlyArray<Columns>) => Effect.Effect<void, E>) =>
      Effect.gen(function*() {
        yield* lock.withPermits(1)(rotate)
        let replayed = 0
        for (const file of yield* segments) {
          const rows = yield* readRows(file)
          for (let i = 0; i < rows.length; i += chunkSize) yield* insert(rows.slice(i, i + chunkSize))
          yield* attempt(`Could not remove ${file}`, () => fs.unlink(file))
          yield* Ref.update(depth, (n) => Math.max(0, n - rows.length))
          replayed += rows.length
        }
        return replayed
      })

    return { append, depth: Ref.get(depth), replay }
  })
