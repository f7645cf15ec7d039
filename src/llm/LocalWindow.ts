import { Effect } from "effect"
import { StartLog, type WindowRule } from "./SlidingWindow.js"
import { type Admission, afterPauseMs, type WindowMode, type WindowStore } from "./WindowStore.js"

/**
 * This process's own starts. Alone it is the window (no `REDIS_URL`); with Redis it still records
 * every start, so a replica never exceeds the limit by itself and can fall back to its share.
 * Its synchronous methods serve the dispatcher's fast path.
 */
export class LocalWindow implements WindowStore {
  readonly inProcess = true
  private readonly log: StartLog

  constructor(requests: number) {
    this.log = new StartLog(requests)
  }

  waitMs(now: number, rules: ReadonlyArray<WindowRule>, pending = 0): number {
    return this.log.waitMs(now, rules, pending)
  }

  record(now: number): void {
    this.log.record(now)
  }

  ensureCapacity(requests: number): void {
    this.log.ensureCapacity(requests)
  }

  readonly mode = (): WindowMode => "local"

  readonly acquire = (now: number, rules: ReadonlyArray<WindowRule>, pending: number) =>
    Effect.sync((): Admission => ({ waitMs: this.log.waitMs(now, rules, pending) }))

  readonly began = (now: number) => Effect.sync(() => this.log.record(now))

  readonly moved = (from: number, to: number) => this.log.move(from, to)

  // A pause is the dispatcher's; nothing else shares this window.
  readonly pause = () => Effect.void

  readonly resume = Effect.void

  readonly estimateMs = (now: number, position: number, rules: ReadonlyArray<WindowRule>, pausedUntil: number) =>
    Math.max(this.log.estimateMs(now, position, rules), afterPauseMs(now, position, rules, pausedUntil))
}
