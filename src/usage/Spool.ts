import { Data, Effect, Either, Ref, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as Path from "node:path"
import { type Columns, SpoolLine } from "./LedgerRow.js"

export class SpoolError extends Data.TaggedError("SpoolError")<{ readonly message: string; readonly cause: unknown }> {}

/**
 * Ledger rows the database could not take, in append-only JSON-lines files under one directory
 * that several processes may share (the server and the CLI on one `DATA_DIR`). Each process
 * appends to its own `current-PID.jsonl`; a replay first renames it to a numbered segment, so
 * appends and replays never touch the same file. A replaying process claims a segment by renaming
 * it to `replaying-PID-…` (a rename only one process can win) and deletes it once all its rows are
 * in the database. Files left by a process that is gone are taken back into segments. A crash
 * mid-append can leave a torn last line: it never decodes, and nothing is appended after it.
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

/** `use` on the file opened at `path`, closed however `use` ends (a failed close loses nothing: `use` synced what it wrote). */
const withFile = <A>(path: string, flags: string, message: string, use: (handle: fs.FileHandle) => Promise<A>) =>
  Effect.acquireUseRelease(
    attempt(message, () => fs.open(path, flags, 0o600)),
    (handle) => attempt(message, () => use(handle)),
    (handle) => Effect.ignore(attempt(message, () => handle.close()))
  )

const syncDirectory = (directory: string) => withFile(directory, "r", `Could not sync ${directory}`, (handle) => handle.sync())

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

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const segmentName = /^segment-\d+(?:-\d+)+\.jsonl$/
const orphanCurrent = /^current(?:-(\d+))?\.jsonl$/
const claimedName = /^replaying-(\d+)-(segment-.+\.jsonl)$/

export const make = (directory: string): Effect.Effect<Spool, SpoolError> =>
  Effect.gen(function*() {
    const current = Path.join(directory, `current-${process.pid}.jsonl`)
    const lock = yield* Effect.makeSemaphore(1)
    let sequence = 0
    /** Rows appended since the last rotation: what a finished replay leaves waiting. */
    let sinceRotation = 0

    yield* attempt(`Could not create ${directory}`, async () => {
      await fs.mkdir(directory, { recursive: true, mode: 0o700 })
      await fs.chmod(directory, 0o700)
    })

    const names = attempt(`Could not list ${directory}`, () => fs.readdir(directory))
    const segments = Effect.map(names, (all) => all.filter((n) => segmentName.test(n)).sort().map((n) => Path.join(directory, n)))
    const nextSegment = () =>
      Path.join(directory, `segment-${String(Date.now()).padStart(15, "0")}-${process.pid}-${String(sequence++).padStart(6, "0")}.jsonl`)

    const rotateFile = (file: string) =>
      Effect.gen(function*() {
        const size = yield* attempt(`Could not stat ${file}`, () => fs.stat(file).then((s) => s.size, () => 0))
        if (size === 0) return
        yield* attempt(`Could not rotate ${file}`, () => fs.rename(file, nextSegment()))
        yield* syncDirectory(directory)
      })

    const rotate = Effect.zipRight(rotateFile(current), Effect.sync(() => (sinceRotation = 0)))

    /** What processes that are gone left behind: their current file, segments they were replaying. */
    const adoptOrphans = Effect.gen(function*() {
      for (const name of yield* names) {
        const open = orphanCurrent.exec(name)
        if (open !== null && Path.join(directory, name) !== current && (open[1] === undefined || !isRunning(Number(open[1])))) {
          yield* rotateFile(Path.join(directory, name))
        }
        const claimed = claimedName.exec(name)
        if (claimed !== null && !isRunning(Number(claimed[1]))) {
          yield* attempt(`Could not recover ${name}`, () =>
            fs.rename(Path.join(directory, name), Path.join(directory, claimed[2]!)).catch(() => undefined))
        }
      }
    })

    yield* rotate
    yield* adoptOrphans
    const initial = yield* Effect.forEach(yield* segments, readRows)
    const depth = yield* Ref.make(initial.reduce((n, rows) => n + rows.length, 0))

    const append = (rows: ReadonlyArray<Columns>) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const created = yield* attempt(`Could not stat ${current}`, () => fs.access(current).then(() => false, () => true))
        const text = rows.map((r) => JSON.stringify(r) + "\n").join("")
        yield* withFile(current, "a", `Could not append to ${current}`, async (handle) => {
          await handle.write(text)
          await handle.sync()
        }).pipe(
          // A half-written line must not have later rows glued to it.
          Effect.tapError(() => Effect.ignore(rotate))
        )
        if (created) yield* syncDirectory(directory)
        sinceRotation += rows.length
        yield* Ref.update(depth, (n) => n + rows.length)
      }))

    /** Renames `file` to this process's claim on it; none when another process claimed it first. */
    const claim = (file: string) =>
      Effect.promise(() => {
        const claimed = Path.join(directory, `replaying-${process.pid}-${Path.basename(file)}`)
        return fs.rename(file, claimed).then(() => claimed, () => null)
      })

    const replay = <E>(insert: (rows: ReadonlyArray<Columns>) => Effect.Effect<void, E>) =>
      Effect.gen(function*() {
        yield* lock.withPermits(1)(rotate)
        yield* adoptOrphans
        let replayed = 0
        for (const file of yield* segments) {
          const claimed = yield* claim(file)
          if (claimed === null) continue
          yield* Effect.gen(function*() {
            const rows = yield* readRows(claimed)
            for (let i = 0; i < rows.length; i += chunkSize) yield* insert(rows.slice(i, i + chunkSize))
            yield* attempt(`Could not remove ${claimed}`, () => fs.unlink(claimed))
            yield* Ref.update(depth, (n) => Math.max(0, n - rows.length))
            replayed += rows.length
          }).pipe(
            // Not in the database yet: back to a segment for the next replay, by this process or another.
            Effect.onError(() => Effect.promise(() => fs.rename(claimed, file).catch(() => undefined)))
          )
        }
        // Every segment seen is in the database (replayed here or by another process).
        yield* lock.withPermits(1)(Effect.suspend(() => Ref.set(depth, sinceRotation)))
        return replayed
      })

    return { append, depth: Ref.get(depth), replay }
  })
