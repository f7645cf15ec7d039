import { describe, expect, layer } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Effect, Layer, Redacted } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type { Emulator } from "../../support/OpenRouterEmulator.js"
import { makeEmulator } from "../../support/OpenRouterEmulator.js"
import { buildEntries } from "../../support/Build.js"
import { TEST_API_KEY } from "../../support/TestApp.js"
import { layerWith, TestDatabase } from "../../support/TestDatabase.js"
import { fixture } from "../../unit/summarize/fixtures.js"

const ROOT = fileURLToPath(new URL("../../../", import.meta.url))
const FIXTURES = fileURLToPath(new URL("../../fixtures/policy-changes/", import.meta.url))
const fixtureFile = (name: string, file: string) => Path.join(FIXTURES, name, file)
const GOOGLE = "07-google-privacy-policy"
const STACK = "09-stack-overflow-privacy-policy"

class CliEmulator extends Context.Tag("test/CliEmulator")<CliEmulator, Emulator>() {}
class Scratch extends Context.Tag("test/Scratch")<Scratch, string>() {}
/** dist/…/cli.js, what `npm run summarize` runs (starting it takes a fraction of tsx's compile). */
class CliBundle extends Context.Tag("test/CliBundle")<CliBundle, string>() {}

const scratchDir = Layer.scoped(
  Scratch,
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(Path.join(tmpdir(), "cli-test-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
)

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The built `cli.js ARGS` with only the given environment (plus PATH and HOME), as a user runs it. */
const cli = (args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const db = yield* TestDatabase
    const emulator = yield* CliEmulator
    const dataDir = yield* Scratch
    const bundle = yield* CliBundle
    const env = {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "",
      DATABASE_URL: Redacted.value(db.url),
      DATA_DIR: dataDir,
      OPENROUTER_BASE_URL: emulator.baseUrl,
      OPENROUTER_API_KEY: TEST_API_KEY,
      SUMMARY_CACHE_TTL_MS: "0",
      ...extraEnv
    }
    return yield* Effect.async<Run>((resume) => {
      const child = execFile(
        process.execPath,
        ["--enable-source-maps", bundle, ...args],
        { cwd: ROOT, env, timeout: 150_000 },
        (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : child.exitCode, stdout, stderr }))
      )
    })
  })

const ledger = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ request_id: string; cost_usd: string; purpose: string }>`
    SELECT request_id, cost_usd::text AS cost_usd, purpose FROM llm_api_usage
  `.pipe(Effect.orDie))

const env = Layer.mergeAll(
  layerWith("cli"),
  Layer.scoped(CliEmulator, makeEmulator()),
  scratchDir,
  Layer.scoped(CliBundle, Effect.map(buildEntries, (b) => b.cli))
)

describe("npm run summarize (src/cli.ts)", () => {
  layer(env, { excludeTestServices: true, timeout: "300 seconds" })("against the emulator and a test database", (it) => {
    it.effect("summarized: exit 0 with the summary, model, tokens and exact cost; --json prints the Summary; both in the ledger", () =>
      Effect.gen(function*() {
        const emulator = yield* CliEmulator
        emulator.reset()
        const [text, json] = yield* Effect.all([
          cli(["--before", fixtureFile(GOOGLE, "old.md"), "--after", fixtureFile(GOOGLE, "new.md")]),
          cli(["--diff", fixtureFile(STACK, "diff.patch"), "--json"])
        ], { concurrency: 2 })
        expect(text.code, text.stderr).toBe(0)
        expect(json.code, json.stderr).toBe(0)
        expect(emulator.completionCount()).toBe(2)

        const summary = JSON.parse(json.stdout)
        const jsonCall = emulator.calls.find((c) => c.generationId === summary.requestId)!
        expect(jsonCall).toBeDefined()
        expect(summary).toMatchObject({
          status: "summarized",
          fallbackReason: null,
          rawDiff: fixture(STACK).patch,
          model: "openai/gpt-4o-mini",
          provider: "OpenAI",
          cached: false,
          attempts: 1,
          usage: {
            promptTokens: jsonCall.usage!.prompt_tokens,
            completionTokens: jsonCall.usage!.completion_tokens,
            totalTokens: jsonCall.usage!.total_tokens,
            costUsd: jsonCall.usage!.cost
          }
        })

        const textCall = emulator.calls.find((c) => c !== jsonCall)!
        const usage = textCall.usage!
        expect(text.stdout).toMatch(/^Summary: [0-9a-f]{8}\. /)
        expect(text.stdout).toContain("model: openai/gpt-4o-mini (OpenAI)")
        expect(text.stdout).toMatch(/^attempts: 1 upstream call, \d+ ms$/m)
        expect(text.stdout).toContain(
          `tokens: ${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion = ${usage.total_tokens}; cost: $${usage.cost}`
        )
        expect(text.stdout).toMatch(/attempts: 1 upstream call, \d+ ms/)

        const rows = yield* ledger
        expect(rows.map((r) => r.request_id).sort()).toEqual([textCall.generationId, jsonCall.generationId].sort())
      }), 300_000)

    it.effect("fallback: exit 3, the reason and the raw diff printed, no upstream call", () =>
      Effect.gen(function*() {
        const emulator = yield* CliEmulator
        emulator.reset()
        const run = yield* cli(["--diff", fixtureFile(STACK, "diff.patch")], { AI_ENABLED: "false" })
        expect(run.code, run.stderr).toBe(2)
        expect(run.stdout).toContain("ai_disabled: The AI is switched off (AI_ENABLED=false)")
        expect(run.stdout).toContain(fixture(STACK).patch)
        expect(emulator.completionCount()).toBe(0)
      }), 300_000)

    it.effect("--help prints the usage (exit 0); no arguments print it to stderr (exit 1); it speaks of flags, not HTTP fields", () =>
      Effect.gen(function*() {
        const [help, none] = yield* Effect.all([cli(["--help"]), cli([])], { concurrency: 2 })
        expect(help.code, help.stderr).toBe(0)
        expect(help.stdout).toMatch(/^Usage: npm run summarize -- --before OLD --after NEW/)
        for (const flag of ["--before FILE", "--after FILE", "--diff FILE", "--model ID", "--json", "-h, --help", "Exit codes:"]) {
          expect(help.stdout).toContain(flag)
        }
        expect(none.code).toBe(1)
        expect(none.stdout).toBe("")
        expect(none.stderr.trim()).toBe(help.stdout.trim())
        expect(help.stdout).not.toMatch(/`diff`/)
      }), 300_000)

    it.effect("bad usage: one line naming the flag, exit 1, nothing on stdout and no upstream call", () =>
      Effect.gen(function*() {
        const emulator = yield* CliEmulator
        const dir = yield* Scratch
        emulator.reset()
        const notADiff = Path.join(dir, "not-a-diff.txt")
        writeFileSync(notADiff, "We changed our terms.\n")
        const old = fixtureFile(GOOGLE, "old.md")
        const missing = Path.join(dir, "missing.md")
        const help = "; see npm run summarize -- --help"
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
          [["--before", old, "--frobnicate"], `Unknown option --frobnicate${help}`],
          [["--before", old], `--before needs --after${help}`],
          [["--diff", notADiff, "--after", old], `--diff cannot be combined with --before or --after${help}`],
          [["--before"], `--before needs a value${help}`],
          [["old.md", "new.md"], `Unexpected argument old.md: files are given with --before/--after or --diff${help}`],
          [["--before", missing, "--after", old], `Cannot read the --before file ${missing}: no such file`],
          [["--diff", notADiff], "--diff: no hunk"]
        ]
        const runs = yield* Effect.forEach(cases, ([args]) => cli(args), { concurrency: 2 })
        runs.forEach((run, i) => {
          const [args, line] = cases[i]!
          console.log(`[cli] ${args.join(" ")} -> exit ${run.code}: ${run.stderr.trim()}`)
          expect(run.code, `${args.join(" ")}: ${run.stderr}`).toBe(1)
          if (args[0] === "--diff" && args.length === 2) expect(run.stderr.trim()).toMatch(/^--diff: no hunk/)
          else expect(run.stderr.trim(), args.join(" ")).toBe(line)
          expect(run.stdout, args.join(" ")).toBe("")
        })
        expect(emulator.completionCount()).toBe(0)
      }), 300_000)
  })
})
