/**
 * Admission control for unauthenticated connections: a cap on concurrent pending handshakes
 * (so half-open sockets cannot pin unbounded memory and timers) and a per-source-address token
 * bucket on failed handshakes (so a prober cannot try cookies quickly). An address that runs
 * out of tokens is blocked for `blockMs`: its connections are closed at once, before any read.
 */
import { assert } from "../../lib/assert.ts";

/** The per-address budget of failed handshakes. */
export interface FailedHandshakeLimit {
  /** Failures allowed in a burst. */
  readonly burst: number;
  /** Failures forgiven per second. */
  readonly refillPerSecond: number;
  /** How long an address that exceeded the budget is refused. */
  readonly blockMs: number;
}

export const FAILED_HANDSHAKE_LIMIT_DEFAULT: FailedHandshakeLimit = {
  burst: 10,
  refillPerSecond: 1,
  blockMs: 30_000,
};
export const PENDING_HANDSHAKES_MAX_DEFAULT = 64;
/** Addresses remembered at most; beyond it the oldest records are forgotten. */
const ADDRESSES_TRACKED_MAX = 10_000;

interface AddressRecord {
  tokens: number;
  updatedMs: number;
  blockedUntilMs: number;
}

export type Admission =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: "pending-cap" | "rate-limited" };

/** Decides whether a new inbound connection may start a handshake. */
export class HandshakeAdmission {
  readonly #pendingMax: number;
  readonly #limit: FailedHandshakeLimit;
  readonly #now: () => number;
  readonly #addresses = new Map<string, AddressRecord>();
  #pending = 0;

  constructor(options: { pendingMax: number; limit: FailedHandshakeLimit; now?: () => number }) {
    assert(
      Number.isInteger(options.pendingMax) && options.pendingMax > 0,
      "pendingMax must be a positive integer",
    );
    assert(
      options.limit.burst >= 1 && options.limit.refillPerSecond >= 0,
      "failed-handshake limit is invalid",
    );
    this.#pendingMax = options.pendingMax;
    this.#limit = options.limit;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Handshakes admitted and not yet settled. */
  get pending(): number {
    return this.#pending;
  }

  /** Admits a connection from `address` (then call `settle` exactly once) or says why not. */
  admit(address: string): Admission {
    const record = this.#addresses.get(address);
    if (record !== undefined && record.blockedUntilMs > this.#now())
      return { ok: false, reason: "rate-limited" };
    if (this.#pending >= this.#pendingMax) return { ok: false, reason: "pending-cap" };
    this.#pending += 1;
    return { ok: true };
  }

  /** Ends an admitted handshake. A failure spends one of the address's tokens. */
  settle(address: string, outcome: "authenticated" | "failed" | "aborted"): void {
    assert(this.#pending > 0, "settle without a matching admit");
    this.#pending -= 1;
    if (outcome === "failed") this.#recordFailure(address);
  }

  /** True while `address` is blocked. */
  isBlocked(address: string): boolean {
    const record = this.#addresses.get(address);
    return record !== undefined && record.blockedUntilMs > this.#now();
  }

  #recordFailure(address: string): void {
    const now = this.#now();
    let record = this.#addresses.get(address);
    if (record === undefined) {
      this.#makeRoom(now);
      record = { tokens: this.#limit.burst, updatedMs: now, blockedUntilMs: 0 };
      this.#addresses.set(address, record);
    }
    const refilled = ((now - record.updatedMs) / 1000) * this.#limit.refillPerSecond;
    record.tokens = Math.min(this.#limit.burst, record.tokens + refilled);
    record.updatedMs = now;
    if (record.tokens >= 1) {
      record.tokens -= 1;
      return;
    }
    record.blockedUntilMs = now + this.#limit.blockMs;
  }

  /** Keeps the table bounded: forget forgiven addresses first, then the oldest. */
  #makeRoom(now: number): void {
    if (this.#addresses.size < ADDRESSES_TRACKED_MAX) return;
    for (const [address, record] of this.#addresses) {
      const refilled = record.tokens + ((now - record.updatedMs) / 1000) * this.#limit.refillPerSecond;
      if (record.blockedUntilMs <= now && refilled >= this.#limit.burst) this.#addresses.delete(address);
    }
    const oldest = this.#addresses.keys().next();
    if (this.#addresses.size >= ADDRESSES_TRACKED_MAX && oldest.done !== true)
      this.#addresses.delete(oldest.value);
  }
}
