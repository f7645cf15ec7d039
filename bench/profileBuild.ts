/**
 * The service transpiled file by file with esbuild (what tsx does, minus tsx's whitespace
 * minifying, which leaves every function anonymous on line 1 in a CPU profile), so that a
 * `--cpu-prof` run names the service's functions and files. Dependencies resolve through a
 * `node_modules` link to the project's.
 */
import { build } from "esbuild"
import { mkdirSync, readdirSync, rmSync, symlinkSync } from "node:fs"
import * as Path from "node:path"
import { projectRoot } from "./processes.js"

export const PROFILE_BUILD = "/tmp/policy-summarizer-profile-build"

const typescriptFiles = (folder: string): Array<string> =>
  readdirSync(Path.join(projectRoot, folder), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .map((file) => Path.join(projectRoot, folder, file))

/** Returns the entry to run with node (`.../src/main.js`). */
export const buildForProfile = async (): Promise<string> => {
  rmSync(PROFILE_BUILD, { recursive: true, force: true })
  mkdirSync(PROFILE_BUILD, { recursive: true })
  await build({
    entryPoints: [...typescriptFiles("src"), ...typescriptFiles("migrations")],
    outdir: PROFILE_BUILD,
    outbase: projectRoot,
    format: "esm",
    platform: "node",
    target: `node${process.versions.node}`,
    logLevel: "warning"
  })
  // The change workers' entry, where `npm run build` puts it beside the code that starts them.
  await build({
    entryPoints: [Path.join(projectRoot, "src/summarize/ChangeWorker.ts")],
    outfile: Path.join(PROFILE_BUILD, "src/summarize/change-worker.js"),
    bundle: true,
    packages: "external",
    format: "esm",
    platform: "node",
    target: `node${process.versions.node}`,
    logLevel: "warning"
  })
  symlinkSync(Path.join(projectRoot, "node_modules"), Path.join(PROFILE_BUILD, "node_modules"))
  // The service reads its version from package.json, imported two folders above src/http.
  symlinkSync(Path.join(projectRoot, "package.json"), Path.join(PROFILE_BUILD, "package.json"))
  return Path.join(PROFILE_BUILD, "src/main.js")
}
