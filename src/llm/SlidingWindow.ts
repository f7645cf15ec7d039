/** A limit of `requests` starts in any span of `windowMs` (a sliding-window log, not a bucket). */
export interface WindowRule {
  readonly requests: number
  readonly windowMs: number
}

/**
 * The newest start times, oldest first, in a ring that never holds more than the largest limit:
 * a rule of `n` per window only needs the n-th newest start to know whether a new one may begin.
 */
export class StartLog {
  private ring: Array<number> = []
  private head = 0
  private size = 0
  /** Older starts were overwritten: a rule raised later cannot count them, only bound them by the oldest kept. */
  private forgotten = false

  constructor(private capacity: number) {}

  /** A new rule may need more of the newest starts kept. */
  ensureCapacity(requests: number): void {
    if (requests > this.capacity) this.capacity = requests
  }

  record(now: number): void {
    if (this.size < this.ring.length) {
      this.ring[(this.head + this.size) % this.ring.length] = now
      this.size++
    } else if (this.ring.length < this.capacity) {
      this.grow()
      this.ring[this.size++] = now
    } else {
      this.ring[this.head] = now
      this.head = (this.head + 1) % this.ring.length
      this.forgotten = true
    }
  }

  /**
   * A start recorded at `from` really began at `to`, no earlier than any start kept: it leaves its
   * place for the newest. One no longer kept (overwritten by newer ones) is recorded anew.
   */
  move(from: number, to: number): void {
    let i = this.size - 1
    while (i >= 0 && this.at(i) > from) i--
    if (i < 0 || this.at(i) !== from) return this.record(to)
    for (; i < this.size - 1; i++) this.ring[(this.head + i) % this.ring.length] = this.at(i + 1)
    this.ring[(this.head + this.size - 1) % this.ring.length] = to
  }

  /** The i-th kept start, 0 being the oldest. */
  private at(i: number): number {
    return this.ring[(this.head + i) % this.ring.length]!
  }

  private grow(): void {
    const next = Math.min(this.capacity, Math.max(16, this.ring.length * 2))
    const ordered = Array.from({ length: this.size }, (_, i) => this.at(i))
    this.ring = ordered.concat(new Array<number>(next - ordered.length).fill(0))
    this.head = 0
  }

  /**
   * Milliseconds until one more start keeps every rule; 0 when it may start now. `pending` starts
   * are granted but not yet recorded: they count as starting now.
   */
  waitMs(now: number, rules: ReadonlyArray<WindowRule>, pending = 0): number {
    let wait = 0
    for (const rule of rules) {
      const kept = rule.requests - pending
      // Granted ones alone fill the window: they will be recorded at the earliest now.
      if (kept <= 0) return Math.max(wait, rule.windowMs)
      if (this.size < kept && !this.forgotten) continue
      // Fewer kept than the rule needs after some were forgotten (a limit raised since): those are
      // no later than the oldest kept, so the window may be full until that one leaves it.
      const blocking = this.at(Math.max(0, this.size - kept)) + rule.windowMs - now
      if (blocking > wait) wait = blocking
    }
    return wait
  }

  /**
   * When the `position`-th next start (1-based) could begin if starts went as fast as the rules
   * allow: the window's free slots go at once, then each start reuses the slot of the start `n`
   * places before it, one window later.
   */
  estimateMs(now: number, position: number, rules: ReadonlyArray<WindowRule>): number {
    let estimate = 0
    for (const { requests: n, windowMs } of rules) {
      const inWindow = this.countSince(now - windowMs, n)
      const beyondFree = position - (n - inWindow)
      if (beyondFree <= 0) continue
      const round = Math.floor((beyondFree - 1) / n)
      const index = (beyondFree - 1) % n
      // The first round is the window's kept starts, then the free slots taken now.
      const slotStart = index < inWindow ? this.at(this.size - inWindow + index) : now
      const at = slotStart + windowMs * (round + 1) - now
      if (at > estimate) estimate = at
    }
    return estimate
  }

  /** Starts newer than `since` among the newest `max` (start times never decrease, so a binary search). */
  private countSince(since: number, max: number): number {
    let lo = this.size - Math.min(max, this.size)
    let hi = this.size
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.at(mid) > since) hi = mid
      else lo = mid + 1
    }
    return this.size - lo
  }
}
