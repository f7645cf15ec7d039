import { Data, Effect, Option, Schema } from "effect"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as Path from "node:path"

/**
 * Who owns the embedded database under `DATA_DIR`: a lock file naming the owner process, created
 * atomically (hard link of a complete file, so no reader ever sees it half-written). A process that
 * died leaves the file behind, so every start checks the named process: gone, or its pid reused by
 * another process (start time or boot differs), and the file is taken over.
 */
export const Role = Schema.Literal("server", "cli")
export type Role = typeof Role.Type

export const OwnerRecord = Schema.Struct({
  pid: Schema.Int,
  /** Field 22 of /proc/PID/stat, which tells a reused pid apart; null where /proc is missing. */
  startTicks: Schema.NullOr(Schema.String),
  bootId: Schema.NullOr(Schema.String),
  role: Role,
  since: Schema.String,
  /** The directory holding the database's Unix socket, once the owner serves it. */
  socketDirectory: Schema.NullOr(Schema.String)
})
export type OwnerRecord = typeof OwnerRecord.Type

export class OwnerFileError extends Data.TaggedError("OwnerFileError")<{
  readonly file: string
  readonly cause: unknown
}> {}

export const fileIn = (dataDir: string) => Path.join(dataDir, "owner.json")

const readText = (file: string) => {
  try {
    return Option.some(readFileSync(file, "utf8"))
  } catch {
    return Option.none()
  }
}

const startTicksOf = (pid: number): Option.Option<string> =>
  Option.flatMap(readText(`/proc/${pid}/stat`), (stat) =>
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
    Option.fromNullable(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]))

const bootId = Option.getOrNull(Option.map(readText("/proc/sys/kernel/random/boot_id"), (s) => s.trim()))

export const self = (role: Role): OwnerRecord => ({
  pid: process.pid,
  startTicks: Option.getOrNull(startTicksOf(process.pid)),
  bootId,
  role,
  since: new Date().toISOString(),
  socketDirectory: null
})

/** Whether the process the record names still runs (and is the same process, not a reused pid). */
export const isAlive = (owner: OwnerRecord): boolean => {
  if (owner.bootId !== null && bootId !== null && owner.bootId !== bootId) return false
  try {
    process.kill(owner.pid, 0)
  } catch (error) {
    // EPERM: it runs, as another user.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false
  }
  return Option.match(startTicksOf(owner.pid), {
    onNone: () => true,
    onSome: (ticks) => owner.startTicks === null || ticks === owner.startTicks
  })
}

const decode = Schema.decodeUnknownOption(Schema.parseJson(OwnerRecord))

/** The recorded owner, if the file exists and reads; an unreadable file counts as no owner. */
export const read = (file: string): Effect.Effect<Option.Option<OwnerRecord>> =>
  Effect.promise(() => fs.readFile(file, "utf8").then(decode, () => Option.none<OwnerRecord>()))

const errno = (cause: unknown) => (cause as NodeJS.ErrnoException).code

const writeTemporary = (file: string, record: OwnerRecord) =>
  Effect.tryPromise({
    try: async () => {
      const temporary = `${file}.${process.pid}.tmp`
      await fs.writeFile(temporary, JSON.stringify(record), { mode: 0o600 })
      return temporary
    },
    catch: (cause) => new OwnerFileError({ file, cause })
  })

/** Either this process now owns `file`, or the live owner it found. */
export type Claim = { readonly _tag: "Owned" } | { readonly _tag: "Busy"; readonly owner: OwnerRecord }

/**
 * Takes ownership unless a live process holds it. A stale file is first moved aside under a name
 * of this process, so two processes taking over at once cannot both win.
 */
export const claim = (file: string, record: OwnerRecord): Effect.Effect<Claim, OwnerFileError> =>
  Effect.gen(function*() {
    const temporary = yield* writeTemporary(file, record)
    const attempt = (tries: number): Effect.Effect<Claim, OwnerFileError> =>
      Effect.gen(function*() {
        const linked = yield* Effect.tryPromise({
          try: () => fs.link(temporary, file).then(() => true),
          catch: (cause) => cause
        }).pipe(Effect.catchAll((cause) => errno(cause) === "EEXIST" ? Effect.succeed(false) : new OwnerFileError({ file, cause })))
        if (linked) return { _tag: "Owned" } as const
        const current = yield* read(file)
        if (Option.isSome(current) && isAlive(current.value)) return { _tag: "Busy", owner: current.value } as const
        if (tries === 0) return yield* new OwnerFileError({ file, cause: new Error("the owner file keeps changing") })
        const aside = `${file}.stale.${process.pid}`
        const moved = yield* Effect.promise(() => fs.rename(file, aside).then(() => true, () => false))
        if (moved) {
          const taken = yield* read(aside)
          // Between our read and the rename a live process may have claimed it: give it back.
          if (Option.isSome(taken) && isAlive(taken.value)) yield* Effect.promise(() => fs.link(aside, file).catch(() => undefined))
          else if (Option.isSome(current)) {
            yield* Effect.logWarning("Took over DATA_DIR from a process that is gone").pipe(
              Effect.annotateLogs({ pid: current.value.pid, role: current.value.role })
            )
          }
          yield* Effect.promise(() => fs.unlink(aside).catch(() => undefined))
        }
        return yield* attempt(tries - 1)
      })
    return yield* attempt(5).pipe(Effect.ensuring(Effect.promise(() => fs.unlink(temporary).catch(() => undefined))))
  })

/** Rewrites this process's record (atomically), e.g. once its socket listens. */
export const update = (file: string, record: OwnerRecord) =>
  Effect.flatMap(writeTemporary(file, record), (temporary) =>
    Effect.tryPromise({ try: () => fs.rename(temporary, file), catch: (cause) => new OwnerFileError({ file, cause }) }))

/** Removes the file if this process still owns it. */
export const release = (file: string) =>
  Effect.flatMap(read(file), (owner) =>
    Option.isSome(owner) && owner.value.pid === process.pid
      ? Effect.promise(() => fs.unlink(file).catch(() => undefined))
      : Effect.void)
