import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as Path from "node:path"
import { DatabaseStartError } from "./StartError.js"

/** Modes for what the service keeps under `DATA_DIR`: only its own user reads or writes them. */
export const directoryMode = 0o700
export const fileMode = 0o600

const reasons: Readonly<Record<string, string>> = {
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "the file system is read-only",
  ENOTDIR: "a file is in the way, not a directory",
  EEXIST: "a file is in the way, not a directory",
  ENOSPC: "no space left on the device"
}

const notUsable = (directory: string, cause: unknown) => {
  const code = (cause as NodeJS.ErrnoException).code ?? "unknown error"
  return new DatabaseStartError({
    message: `DATA_DIR ${directory} is not writable (${reasons[code] ?? code}); ` +
      "fix its permissions or set DATA_DIR to a directory this user can write",
    cause
  })
}

/**
 * Creates `DATA_DIR` (0700) and proves it writable with a real write, since `access(W_OK)` says
 * yes to root on a read-only mount. Returns the absolute path.
 */
export const prepare = (dataDir: string): Effect.Effect<string, DatabaseStartError> => {
  const directory = Path.resolve(dataDir)
  return Effect.tryPromise({
    try: async () => {
      await fs.mkdir(directory, { recursive: true, mode: directoryMode })
      await fs.chmod(directory, directoryMode)
      const probe = Path.join(directory, `.write-check-${process.pid}`)
      await fs.writeFile(probe, "", { mode: fileMode })
      await fs.unlink(probe)
      return directory
    },
    catch: (cause) => notUsable(directory, cause)
  })
}

/** A private subdirectory of `DATA_DIR` (created 0700, tightened if it already existed). */
export const privateDirectory = (directory: string) =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(directory, { recursive: true, mode: directoryMode })
      await fs.chmod(directory, directoryMode)
      return directory
    },
    catch: (cause) => notUsable(directory, cause)
  })

/**
 * Files 0600 and directories 0700 below `directory`. PGlite creates its files 0666 whatever the
 * umask; the 0700 directories above them already keep other users out, this closes the files too.
 */
export const restrictTree = (directory: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const walk = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => [])
      await fs.chmod(dir, directoryMode).catch(() => undefined)
      for (const entry of entries) {
        const path = Path.join(dir, entry.name)
        if (entry.isDirectory()) await walk(path)
        else if (entry.isFile()) await fs.chmod(path, fileMode).catch(() => undefined)
      }
    }
    await walk(directory)
  })
