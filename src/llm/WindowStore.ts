import type { Effect } from "effect"
import type { WindowRule } from "./SlidingWindow.js"

/** Where the window is counted: this process, a shared Redis, or this replica's share while Redis is unreachable. */
export type WindowMode = "local" | "redis" | "local-fallback"

/** 0: one more start may begin now (counted in a shared window under `member`); otherwise how long to wait first. */
export interface Admission {
  readonly waitMs: number
  readonly member?: string
}

/**
 * The window of upstream starts the limiter's dispatcher asks before each start: `LocalWindow`
 * (this process), `RedisWindow` (every replica), and `withLocalFallback` around the latter.
 */
export interface WindowStore<E = never> {
  /** Answers from this process's memory: the dispatcher may then start callers without a hop. */
  readonly inProcess: boolean
  readonly mode: () => WindowMode
  /** Whether one more start keeps every rule now; `pending` starts were granted and not begun yet (they count as now). */
  readonly acquire: (now: number, rules: ReadonlyArray<WindowRule>, pending: number) => Effect.Effect<Admission, E>
  /** The admitted call began at `now`. */
  readonly began: (now: number, admission: Admission) => Effect.Effect<void>
  /** The call that began at `from` reached the wire only at `to`: its start is counted from then. Synchronous: called from the transport. */
  readonly moved: (from: number, to: number, admission: Admission) => void
  /** Holds the starts of everyone counting in this window until `untilMs` (Unix ms). */
  readonly pause: (untilMs: number) => Effect.Effect<void, E>
  /** Ends that pause early. */
  readonly resume: Effect.Effect<void, E>
  /** When the `position`-th caller from now (1-based) could start, at the earliest, given a pause until `pausedUntil`. */
  readonly estimateMs: (now: number, position: number, rules: ReadonlyArray<WindowRule>, pausedUntil: number) => number
}

/** After a pause, the starts go as fast as the rules allow: `position` of them need this long past its end. */
export const afterPauseMs = (now: number, position: number, rules: ReadonlyArray<WindowRule>, pausedUntil: number) =>
  Math.max(0, pausedUntil - now) + Math.max(...rules.map((r) => Math.floor((position - 1) / r.requests) * r.windowMs))
