import { Deferred, FiberId } from "effect"
import type { Priority } from "../domain/Completion.js"

export interface Waiter {
  readonly granted: Deferred.Deferred<void>
  readonly arrivedAt: number
  readonly lane: Lane
  state: "waiting" | "granted" | "cancelled"
  /** Its start in the shared window, once Redis admitted it. */
  member?: string
}

/** One owner's waiters (a request, later a caller), first in first out. */
interface Lane {
  readonly owner: string
  readonly priority: Priority
  readonly waiters: Array<Waiter>
  head: number
}

/**
 * The owners with waiters of one priority, served in turn: `turn` is the index of the lane served
 * next (past the end: wrap). A new owner joins at the end, after every owner already waiting has
 * had its turn in this round.
 */
class Round {
  constructor(private readonly priority: Priority) {}

  private readonly lanes = new Map<string, Lane>()
  private readonly ring: Array<Lane> = []
  private turn = 0

  private turnIndex() {
    return this.turn < this.ring.length ? this.turn : 0
  }

  laneOf(owner: string): Lane {
    const existing = this.lanes.get(owner)
    if (existing !== undefined) return existing
    const lane: Lane = { owner, priority: this.priority, waiters: [], head: 0 }
    this.lanes.set(owner, lane)
    this.ring.push(lane)
    return lane
  }

  /** The first live waiter of the lane whose turn it is; emptied lanes leave the ring. */
  head(): Waiter | undefined {
    while (this.ring.length > 0) {
      const at = this.turnIndex()
      const lane = this.ring[at]!
      while (lane.head < lane.waiters.length && lane.waiters[lane.head]!.state !== "waiting") lane.head++
      if (lane.head < lane.waiters.length) {
        if (lane.head > 1024 && lane.head * 2 > lane.waiters.length) {
          lane.waiters.splice(0, lane.head)
          lane.head = 0
        }
        return lane.waiters[lane.head]
      }
      this.ring.splice(at, 1)
      this.lanes.delete(lane.owner)
      if (at < this.turn) this.turn--
    }
    this.turn = 0
    return undefined
  }

  /** Takes the waiter `head` just returned; the next turn goes to the next lane. */
  take(waiter: Waiter) {
    waiter.lane.head++
    this.turn = this.turnIndex() + 1
  }
}

/**
 * The limiter's waiters: round-robin between owners, first in first out within one owner, and a
 * `background` waiter only when no `interactive` one waits. Plain synchronous code: the limiter
 * calls it from inside one `Effect.sync` at a time.
 */
export class WaiterQueue {
  private readonly interactive = new Round("interactive")
  private readonly background = new Round("background")
  private anonymous = 0
  /** Waiters neither granted nor cancelled. */
  size = 0
  private interactiveSize = 0

  /** The waiters a newcomer of `priority` would wait behind. */
  ahead(priority: Priority): number {
    return priority === "background" ? this.size : this.interactiveSize
  }

  add(owner: string | undefined, priority: Priority, arrivedAt: number): Waiter {
    const round = priority === "background" ? this.background : this.interactive
    const lane = round.laneOf(owner ?? `anonymous:${this.anonymous++}`)
    const waiter: Waiter = { granted: Deferred.unsafeMake(FiberId.none), arrivedAt, lane, state: "waiting" }
    lane.waiters.push(waiter)
    this.count(waiter, 1)
    return waiter
  }

  /** The waiter served next, left in place. */
  peek(): Waiter | undefined {
    return this.interactive.head() ?? this.background.head()
  }

  /** Removes the waiter served next and marks it granted (its `Deferred` is the caller's to complete). */
  take(): Waiter | undefined {
    const interactive = this.interactive.head()
    const round = interactive === undefined ? this.background : this.interactive
    const waiter = interactive ?? this.background.head()
    if (waiter === undefined) return undefined
    round.take(waiter)
    waiter.state = "granted"
    this.count(waiter, -1)
    return waiter
  }

  /** A waiter that stopped waiting; its slot in its lane is skipped when reached. */
  cancel(waiter: Waiter) {
    waiter.state = "cancelled"
    this.count(waiter, -1)
  }

  private count(waiter: Waiter, by: 1 | -1) {
    this.size += by
    if (waiter.lane.priority === "interactive") this.interactiveSize += by
  }
}
