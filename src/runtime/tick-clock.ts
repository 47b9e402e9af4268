/**
 * Turns elapsed monotonic time into Raft ticks. The core counts time in ticks; counting timer
 * firings instead would lose the ticks of a paused process (GC, SIGSTOP, a slow disk), and the
 * lease-read safety argument needs a resumed node to see all the time that passed before it
 * serves anything (src/raft/DESIGN.md, "Reads").
 */
import { assert } from "../lib/assert.ts";

export class TickClock {
  readonly #tickIntervalMs: number;
  readonly #catchUpTicksMax: number;
  #originMs: number;
  #ticksCounted = 0;

  /**
   * @param catchUpTicksMax at most this many ticks are delivered at once after a long pause; the
   *   rest are skipped. It must exceed two election timeouts, so that every timeout the pause
   *   covered still fires (a leader steps down by check-quorum, a lease expires, a follower campaigns).
   */
  constructor(nowMs: number, tickIntervalMs: number, catchUpTicksMax: number) {
    assert(tickIntervalMs > 0, "tickIntervalMs must be positive");
    assert(catchUpTicksMax >= 1, "catchUpTicksMax must be at least 1");
    this.#tickIntervalMs = tickIntervalMs;
    this.#catchUpTicksMax = catchUpTicksMax;
    this.#originMs = nowMs;
  }

  /** Ticks that elapsed since the last call (bounded by `catchUpTicksMax`). */
  take(nowMs: number): number {
    const total = Math.floor((nowMs - this.#originMs) / this.#tickIntervalMs);
    const due = total - this.#ticksCounted;
    if (due <= 0) return 0;
    this.#ticksCounted = total;
    return Math.min(due, this.#catchUpTicksMax);
  }

  /**
   * Milliseconds from `nowMs` until `ticksAhead` ticks after the last tick `take` counted, or
   * until the next tick boundary when that point has passed (always > 0).
   */
  delayToTicksAfterCountedMs(nowMs: number, ticksAhead: number): number {
    const atMs = this.#originMs + (this.#ticksCounted + ticksAhead) * this.#tickIntervalMs;
    return atMs > nowMs ? atMs - nowMs : this.delayToNextTickMs(nowMs);
  }

  /** Milliseconds until the next tick boundary strictly after `nowMs` (always > 0). */
  delayToNextTickMs(nowMs: number): number {
    const intoTick = (nowMs - this.#originMs) % this.#tickIntervalMs;
    return this.#tickIntervalMs - intoTick;
  }
}
