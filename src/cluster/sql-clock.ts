/**
 * The clock SQL's `CURRENT_TIMESTAMP`, `datetime('now')`… are filled in with (ms since the
 * epoch): the primary's wall clock, wherever the statement was received. The member that takes
 * a write rewrites those into literals before proposing it (src/adapters/sqlite/sql-rewrite.ts),
 * so a secondary whose clock is a minute behind wrote times a minute old into a table that the
 * primary's writes keep in real time. A secondary now adds the primary's clock offset, as its
 * pings measure it (NTP's estimate, member-pings.ts), to its own clock — but only when the
 * offset is surely real: larger than the round trip it was measured over (the estimate is off
 * by at most half of it) and than {@link offsetIgnoredMsMax}. Clocks in sync are left alone, so
 * the estimate's noise never reaches the data. Without a recent estimate (no primary, no pong
 * for {@link offsetFreshMsMax}) a member uses its own clock, as before.
 *
 * @example
 * ```ts
 * const clock = new SqlClock({ wallClockMs: Date.now, monotonicMs: () => performance.now(), primary });
 * prepareSql(statements, { now: new Date(clock.nowMs()), random });
 * ```
 */

/** Offsets up to this are left alone (ms): clocks kept by NTP agree about that well. */
export const offsetIgnoredMsMax = 20;
/** An offset measured longer ago than this is not used (ms). */
export const offsetFreshMsMax = 30_000;

/** What this node knows of the primary's clock: null when it is the primary or knows none. */
export interface PrimaryClockEstimate {
  /** The primary's clock minus ours (ms). */
  readonly offsetMs: number | null;
  /** The round trip the offset was measured over (ms). */
  readonly rttMs: number | null;
  /** This node's monotonic clock when the primary was last heard from. */
  readonly lastContactAtMs: number;
}

export interface SqlClockOptions {
  /** This node's wall clock (ms since the epoch). */
  readonly wallClockMs: () => number;
  /** The monotonic clock the estimate's contact time is on. */
  readonly monotonicMs: () => number;
  /** The primary's clock as this node's pings measured it, or null (this node leads, or no primary is known). */
  readonly primary: () => PrimaryClockEstimate | null;
}

export class SqlClock {
  readonly #options: SqlClockOptions;

  constructor(options: SqlClockOptions) {
    this.#options = options;
  }

  nowMs(): number {
    const own = this.#options.wallClockMs();
    return own + this.offsetUsedMs();
  }

  /** What is added to this node's clock now (0: its own clock is used). */
  offsetUsedMs(): number {
    const estimate = this.#options.primary();
    if (estimate === null || estimate.offsetMs === null || estimate.rttMs === null) return 0;
    if (this.#options.monotonicMs() - estimate.lastContactAtMs > offsetFreshMsMax) return 0;
    const size = Math.abs(estimate.offsetMs);
    if (size <= offsetIgnoredMsMax || size <= estimate.rttMs) return 0;
    return Math.round(estimate.offsetMs);
  }
}
