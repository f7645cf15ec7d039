/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and aggregates self time by function and
 * script, and by package or source file, optionally only over a window of the profile's clock.
 */
import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface HotSpot {
  readonly name: string
  readonly where: string
  readonly selfMs: number
  readonly percent: number
}

export interface ProfileSummary {
  readonly sampledMs: number
  readonly functions: ReadonlyArray<HotSpot>
  readonly places: ReadonlyArray<HotSpot>
  /** Samples by concern (see CONCERNS). */
  readonly concerns: ReadonlyArray<HotSpot>
}

/**
 * A sample's concern is found walking its stack from the leaf up: the first frame that belongs to
 * one of these decides; Node's own frames (node:internal, natives such as writev) are passed
 * through, so a socket write counts for whoever wrote. Work that Effect's fiber loop runs has the
 * runtime right below it, so time in the runtime itself (op dispatch, fibers, spans, metrics) is
 * told apart from the service's code and the libraries it calls.
 */
const CONCERNS: ReadonlyArray<readonly [string, RegExp]> = [
  ["change parsing, condensing and prompt (src/summarize, diff)", /\/src\/summarize\/(Change|Condense|Normalize|Heading|Split|Tokens|Prompt)\.|\/node_modules\/diff\//],
  ["upstream call: undici (src/llm/OpenRouter.ts, CappedRead.ts)", /\/node_modules\/undici\/|\/src\/llm\/CappedRead\./],
  ["PostgreSQL client (pg, @effect/sql)", /\/node_modules\/(pg|pg-pool|pg-protocol|pg-types|@effect\/sql|@effect\/sql-pg)\//],
  ["Schema decode/encode", /\/node_modules\/effect\/dist\/esm\/(internal\/schema\/|ParseResult|Schema)/],
  ["HTTP server (node:http, @effect/platform)", /node:_http|\/node_modules\/@effect\/platform|\/node_modules\/find-my-way/],
  ["Effect runtime (fiber loop, ops, spans, metrics)", /\/node_modules\/effect\//],
  ["service code (src), other", /\/(src|migrations)\//]
]
const OTHER = "Node internals, other"

const concernOf = (stack: ReadonlyArray<CallFrame>): string => {
  const leaf = stack[0]!
  if (leaf.functionName === "(garbage collector)" || leaf.functionName === "(idle)" || leaf.functionName === "(program)") {
    return leaf.functionName
  }
  for (const frame of stack) {
    const concern = CONCERNS.find(([, pattern]) => pattern.test(frame.url))
    if (concern !== undefined) return concern[0]
  }
  return OTHER
}

/** A short location: `src/...` for the project, `pkg/file` for a dependency, `node:...` for Node. */
const shortUrl = (url: string): string => {
  if (url === "") return "(native/VM)"
  const modules = url.lastIndexOf("/node_modules/")
  if (modules !== -1) return url.slice(modules + "/node_modules/".length)
  const project = /\/((?:src|migrations)\/.*)$/.exec(url)
  if (project !== null) return project[1]!.replace(/\.js$/, ".ts")
  return url.replace(/^file:\/\//, "")
}

/** The package (`effect`, `@effect/platform`, `undici`, `pg`...) or the project file a location is in. */
const placeOf = (url: string): string => {
  const short = shortUrl(url)
  if (url.includes("/node_modules/")) {
    const parts = short.split("/")
    return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!
  }
  if (short.startsWith("node:")) return "node internals (JS)"
  return short
}

const top = (totals: Map<string, { name: string; where: string; us: number }>, totalUs: number, n: number): Array<HotSpot> =>
  [...totals.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((t) => ({ name: t.name, where: t.where, selfMs: t.us / 1000, percent: (100 * t.us) / totalUs }))

/**
 * `window`: [from, to] in microseconds after the profile's start; samples outside are ignored,
 * so that start-up (module loading, transpiling) does not crowd out the steady state.
 */
export const summarize = (path: string, window?: readonly [number, number], n = 20): ProfileSummary => {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const concerns = new Map<string, { name: string; where: string; us: number }>()
  const stackOf = (id: number): Array<CallFrame> => {
    const frames: Array<CallFrame> = []
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) frames.push(byId.get(at)!.callFrame)
    return frames
  }
  const functions = new Map<string, { name: string; where: string; us: number }>()
  const places = new Map<string, { name: string; where: string; us: number }>()
  let at = 0
  let totalUs = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (window !== undefined && (at < window[0] || at > window[1])) continue
    // A sample's time is the gap to the next one (the last sample gets the mean gap, ~ the interval).
    const us = profile.timeDeltas[i + 1] ?? delta
    const frame = byId.get(profile.samples[i]!)!.callFrame
    const concern = concernOf(stackOf(profile.samples[i]!))
    const c = concerns.get(concern) ?? { name: concern, where: "", us: 0 }
    c.us += us
    concerns.set(concern, c)
    const name = frame.functionName === "" ? "(anonymous)" : frame.functionName
    // Project files ran transpiled, so their line numbers would not match the source: file only.
    const where = frame.url === "" ? "" : frame.url.includes("/node_modules/") || frame.url.startsWith("node:")
      ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}`
      : shortUrl(frame.url)
    const key = `${name}\u0000${where}\u0000${frame.lineNumber}:${frame.columnNumber}`
    const f = functions.get(key) ?? { name, where, us: 0 }
    f.us += us
    functions.set(key, f)
    const place = frame.url === "" ? name : placeOf(frame.url)
    const p = places.get(place) ?? { name: place, where: "", us: 0 }
    p.us += us
    places.set(place, p)
    totalUs += us
  }
  return {
    sampledMs: totalUs / 1000,
    functions: top(functions, totalUs, n),
    places: top(places, totalUs, n),
    concerns: top(concerns, totalUs, CONCERNS.length + 4)
  }
}

/** The profile's length in microseconds, to place a window measured from its end. */
export const durationUs = (path: string): number => {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile
  return profile.endTime - profile.startTime
}
