/**
 * The clock leases are timed by (ms since the epoch). On the primary it is the wall clock read
 * once in each term, when the term first needs it, then advanced by the monotonic clock: a step
 * of the wall clock during the term (NTP stepping an hour at once, a VM's clock set back) then
 * neither expires every lease at once nor keeps leases past their TTL. A new term takes a new
 * reading, and the new primary's `lease-renew-all` extends every lease to at least that reading
 * + TTL (lease-expiry.ts), so a step is picked up at the next change of primary and never
 * shortens a lease; a step back makes leases live up to the step longer once. etcd's lessor
 * does the same with Go's monotonic clock. On other members it is the wall clock: what they
 * stamp is replaced by the primary's reading when forwarded (`stampAtPrimary`).
 *
 * The monotonic clock stops while the machine is suspended, so on a primary that was suspended
 * (and is still primary afterwards: a standalone node) leases live that much longer.
 *
 * @example
 * ```ts
 * const clock = new LeaseClock({ wallClockMs: Date.now, monotonicMs: () => performance.now(), leaderTerm });
 * const command = { kind: "kv", op: "lease-grant", ttlMs, nowMs: clock.nowMs() };
 * ```
 */

export interface LeaseClockOptions {
  /** This node's wall clock (ms since the epoch). */
  readonly wallClockMs: () => number;
  /** A monotonic clock (ms, any origin). */
  readonly monotonicMs: () => number;
  /** The term in which this node is the primary now, or null when it is not. */
  readonly leaderTerm: () => number | null;
}

export class LeaseClock {
  readonly #options: LeaseClockOptions;
  #anchor: { readonly term: number; readonly wallMs: number; readonly monotonicMs: number } | null = null;

  constructor(options: LeaseClockOptions) {
    this.#options = options;
  }

  nowMs(): number {
    const { wallClockMs, monotonicMs, leaderTerm } = this.#options;
    const term = leaderTerm();
    if (term === null) return wallClockMs();
    if (this.#anchor?.term !== term)
      this.#anchor = { term, wallMs: wallClockMs(), monotonicMs: monotonicMs() };
    // Whole milliseconds, as lease commands carry them (the monotonic clock has fractions).
    return Math.floor(this.#anchor.wallMs + (monotonicMs() - this.#anchor.monotonicMs));
  }
}
