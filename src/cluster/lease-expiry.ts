/**
 * Lease expiry through the log: every `checkIntervalMs`, the primary looks at the earliest lease
 * expiry in its database and, once its wall clock has passed it, proposes `lease-expire` with
 * that clock. Members never expire leases on their own clock, so every member deletes the same
 * keys at the same index. Only the primary proposes; a follower's timer does nothing. At most one
 * proposal is in flight; failures (lost leadership, timeout) are retried at the next check.
 *
 * @example
 * ```ts
 * const expiry = new LeaseExpiry({ runtime, database, wallClockMs: () => Date.now(), logger });
 * expiry.start();
 * // …
 * expiry.stop();
 * ```
 */
import type { Database } from "../ports/database.ts";
import type { Logger } from "../ports/logger.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";

/** Default period of the expiry check. */
export const leaseCheckIntervalMsDefault = 250;

export interface LeaseExpiryOptions {
  readonly runtime: Pick<RaftRuntime, "propose" | "status" | "running">;
  readonly database: Pick<Database, "earliestLeaseExpiryMs" | "encodeCommand">;
  /** The primary's wall clock (ms since the epoch): the same clock lease grants carry. */
  readonly wallClockMs: () => number;
  readonly logger: Logger;
  readonly checkIntervalMs?: number;
}

export class LeaseExpiry {
  readonly #options: LeaseExpiryOptions;
  #timer: ReturnType<typeof setInterval> | null = null;
  #inFlight = false;

  constructor(options: LeaseExpiryOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(
      () => this.check(),
      this.#options.checkIntervalMs ?? leaseCheckIntervalMsDefault,
    );
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One check (the timer calls it; tests may too). */
  check(): void {
    const { runtime, database, wallClockMs, logger } = this.#options;
    if (this.#inFlight || !runtime.running || runtime.status().role !== "leader") return;
    const earliest = database.earliestLeaseExpiryMs();
    const nowMs = wallClockMs();
    if (earliest === null || earliest > nowMs) return;
    this.#inFlight = true;
    runtime
      .propose(database.encodeCommand({ kind: "kv", op: "lease-expire", nowMs }))
      .then(
        ({ result }) => logger.debug({ result }, "expired leases"),
        (error: unknown) =>
          logger.debug({ error: String(error) }, "lease expiry not proposed; retrying at the next check"),
      )
      .finally(() => {
        this.#inFlight = false;
      });
  }
}
