/**
 * The clock port: monotonic time and one-shot timers. The runtime turns elapsed monotonic time
 * into Raft ticks (never counts timer firings), so a process that was paused catches up on the
 * ticks it missed. Tests pass a manual clock; production passes the system's monotonic clock.
 *
 * @example
 * ```ts
 * const started = clock.now();
 * const timer = clock.setTimer(() => wake(), 50);
 * timer.cancel();
 * ```
 */

/** A scheduled callback; `cancel` is idempotent. */
export interface TimerHandle {
  cancel(): void;
}

/** Monotonic time and timers. */
export interface Clock {
  /** Milliseconds on a monotonic clock (never goes back; unrelated to the wall clock). */
  now(): number;
  /** Calls `callback` once after at least `delayMs`. The callback must not throw. */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
}
