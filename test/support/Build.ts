import { Effect } from "effect"
import { build } from "esbuild"
import { rmSync } from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))

/**
 * `src/main.ts`, `src/cli.ts` and the change worker bundled as `npm start` / `npm run summarize` build them, into a
 * directory of this test run under `dist/` (so the bundles find `node_modules`). Starting a bundle
 * takes a fraction of what `tsx` takes to compile the sources at every start.
 */
export const buildEntries = Effect.acquireRelease(
  Effect.promise(async () => {
    const outdir = Path.join(root, "dist", `test-${process.pid}-${Date.now().toString(36)}`)
    await build({
      entryPoints: {
        main: Path.join(root, "src/main.ts"),
        cli: Path.join(root, "src/cli.ts"),
        "change-worker": Path.join(root, "src/summarize/ChangeWorker.ts")
      },
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      sourcemap: true,
      outdir,
      logLevel: "warning"
    })
    return { outdir, main: Path.join(outdir, "main.js"), cli: Path.join(outdir, "cli.js") }
  }),
  ({ outdir }) => Effect.sync(() => rmSync(outdir, { recursive: true, force: true }))
)
