/**
 * The instant upstream for `bench/run.ts`, in a process of its own so that it does not share an
 * event loop with the load generator. Prints `{"baseUrl": ...}` once listening, then answers
 * line commands on stdin, one JSON line each:
 *   count  -> {"completions": n}   completion requests since the last reset
 *   sample -> {"body": ...}        the last completion request's body
 *   calls  -> {"calls": [{ at, title, body }]}  every completion request since the last reset: arrival
 *             (Unix ms, as its headers were read), X-Title, and the body as text
 *   reset  -> {"reset": true}      forgets recorded calls (they hold bodies: memory would grow) and
 *                                  collects garbage
 * `--latency-ms=N` makes every answer take N ms.
 */
import { createInterface } from "node:readline"
import { startEmulator } from "../test/support/OpenRouterEmulator.js"

const latencyMs = Number(process.argv.find((a) => a.startsWith("--latency-ms="))?.slice("--latency-ms=".length) ?? 0)
const emulator = await startEmulator({ latencyMs })
const reply = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`)

reply({ baseUrl: emulator.baseUrl })

createInterface({ input: process.stdin }).on("line", (line) => {
  switch (line.trim()) {
    case "count":
      return reply({ completions: emulator.completionCount() })
    case "sample":
      return reply({ body: emulator.calls.at(-1)?.body ?? null })
    case "calls":
      return reply({
        calls: emulator.calls
          .filter((c) => c.body !== undefined)
          .map((c) => ({ at: c.at, title: c.headers["x-title"] ?? null, body: JSON.stringify(c.body) }))
      })
    case "reset":
      emulator.reset()
      // What start-up left is collected now, not during the next measurement: a collection in this
      // process mid-run held its reading of requests for 15-30 ms, which `bench/jobs.ts` then took
      // for the service's calls arriving late (run with --expose-gc by `startUpstream`).
      ;(globalThis as { gc?: () => void }).gc?.()
      return reply({ reset: true })
    default:
      return reply({ error: `unknown command ${line}` })
  }
}).on("close", () => {
  void emulator.close().finally(() => process.exit(0))
})
