/**
 * Lease expiry through the log: every `checkIntervalMs`, the primary looks at the earliest lease
 * expiry in its database and, once its lease clock (lease-clock.ts: its wall clock, advanced by
 * the monotonic clock within a term) has passed it, proposes `lease-expire` with that clock. Members never expire leases on their own clock, so every member deletes the same
 * keys at the same index. Only the primary proposes; a follower's timer does nothing. At most one
 * proposal is in flight; failures (lost leadership, timeout) are retried at the next check.
 *
 * Once per term, as soon as it sees a lease, the primary proposes `lease-renew-all` with its clock,
 * and it expires nothing before that entry is applied: a lease's expiry was set by the clock of the
 * member that granted or renewed it, and a primary whose clock runs ahead would otherwise expire
 * it early by the difference (etcd's lessor extends every lease on a leader change for the same
 * reason). The renewal applies after every entry before it in the log, so it also covers leases
 * this primary had not applied yet; a cluster without leases writes nothing.
 *
 * @example
 * ```ts
 * const expiry = new LeaseExpiry({ runtime, database, leaseClockMs: () => clock.nowMs(), logger });
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
  /** The primary's lease clock (ms since the epoch, lease-clock.ts): the clock lease grants carry. */
  readonly leaseClockMs: () => number;
  readonly logger: Logger;
  readonly checkIntervalMs?: number;
}

export class LeaseExpiry {
  readonly #options: LeaseExpiryOptions;
  #timer: ReturnType<typeof setInterval> | null = null;
  #inFlight = false;
  /** The term whose `lease-renew-all` was applied; expiry waits for it in each new term. */
  #renewedTerm: number | null = null;

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
    const { runtime, database, leaseClockMs, logger } = this.#options;
    if (this.#inFlight || !runtime.running) return;
    const status = runtime.status();
    if (status.role !== "leader") return;
    const earliest = database.earliestLeaseExpiryMs();
    const nowMs = leaseClockMs();
    if (earliest !== null && this.#renewedTerm !== status.term) {
      this.#propose({ kind: "kv", op: "lease-renew-all", nowMs }, (term, result) => {
        // Only an entry of this term, applied, lets this primary expire leases.
        if (term === status.term) this.#renewedTerm = term;
        logger.debug({ result, term }, "renewed every lease for a new primary");
      });
      return;
    }
    if (earliest === null || earliest > nowMs) return;
    this.#propose({ kind: "kv", op: "lease-expire", nowMs }, (_term, result) =>
      logger.debug({ result }, "expired leases"),
    );
  }

  #propose(
    command: { kind: "kv"; op: "lease-renew-all" | "lease-expire"; nowMs: number },
    done: (term: number, result: unknown) => void,
  ): void {
    const { runtime, database, logger } = this.#options;
    this.#inFlight = true;
    runtime
      .propose(database.encodeCommand(command))
      .then(
        ({ term, result }) => done(term, result),
        (error: unknown) =>
          logger.debug(
            { error: String(error), op: command.op },
            "lease command not proposed; retrying at the next check",
          ),
      )
      .finally(() => {
        this.#inFlight = false;
      });
  }
}
