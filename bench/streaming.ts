/**
 * Time to first byte of a streamed chat completion, one request in flight: the bare proxy (which
 * pipes the SSE as it arrives) against the service's `POST /v1/chat/completions`, in interleaved
 * rounds against the same upstream. Measured in the bench process with undici: from sending the
 * request to the first body chunk.
 */
import { Pool } from "undici"

export interface TtfbFigures {
  readonly name: string
  readonly requests: number
  readonly errors: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly meanMs: number
}

export interface StreamTarget {
  readonly name: string
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN

const measure = async (target: StreamTarget, body: string, count: number) => {
  const url = new URL(target.url)
  const pool = new Pool(url.origin, { connections: 1, keepAliveTimeout: 30_000 })
  const times: Array<number> = []
  let errors = 0
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now()
      try {
        const answer = await pool.request({
          path: url.pathname,
          method: "POST",
          headers: { "content-type": "application/json", ...target.headers },
          body
        })
        let first = true
        for await (const _ of answer.body) {
          if (first && answer.statusCode === 200) times.push(performance.now() - started)
          first = false
        }
        // An error answer has no first byte of a stream to time.
        if (answer.statusCode !== 200) errors++
      } catch {
        errors++
      }
    }
  } finally {
    await pool.close()
  }
  return { times, errors }
}

/** `rounds` interleaved rounds of `perRound` streamed requests to each target, after a short warm-up. */
export const run = async (targets: ReadonlyArray<StreamTarget>, body: string, rounds: number, perRound: number) => {
  for (const t of targets) await measure(t, body, 50)
  const all = new Map(targets.map((t) => [t, { times: [] as Array<number>, errors: 0, roundP99: [] as Array<number> }]))
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      const { times, errors } = await measure(t, body, perRound)
      const entry = all.get(t)!
      entry.times.push(...times)
      entry.errors += errors
      entry.roundP99.push(percentile([...times].sort((a, b) => a - b), 0.99))
    }
  }
  return targets.map((t) => {
    const entry = all.get(t)!
    const sorted = [...entry.times].sort((a, b) => a - b)
    return {
      name: t.name,
      requests: sorted.length,
      errors: entry.errors,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
      roundP99Ms: entry.roundP99
    }
  })
}
