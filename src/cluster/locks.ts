/**
 * Distributed locks on leases, etcd's recipe (the same keys as src/adapters/sqlite/kv-lock.ts):
 * each contender puts `lock/<name>/<leaseId as 16 hex digits>` attached to its own lease; the
 * holder is the key with the lowest create_revision. A holder that stops keeping its lease alive
 * (crash, partition) loses the key when the primary expires the lease through the log, and the
 * next contender holds the lock.
 *
 * Why a local check is enough: once this node applied its own key, every key with a lower
 * create_revision is applied here too, and keys are only ever removed afterwards — so "mine is
 * the lowest here" stays true on every member until my key is deleted.
 *
 * The handle's `signal` aborts when the lock is lost (the key was deleted, or keep-alives failed
 * for a whole TTL, so this node can no longer be sure) or released. Like every lease lock, a
 * holder paused for longer than the TTL may still act after the lock moved: pass `revision` (a
 * fencing token that only grows) to whatever the lock protects.
 *
 * @example
 * ```ts
 * const lock = await locks.acquire("nightly-report", { ttlMs: 10_000 });
 * try { await report(lock.signal); } finally { await lock.release(); }
 * ```
 */
import { ConclaveError, isConclaveError } from "../lib/errors.ts";
import type { Database } from "../ports/database.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";
import type { EmbeddedKv } from "./embedded-database.ts";

/** Default lease TTL of a lock. */
export const lockTtlMsDefault = 10_000;
/** Shortest TTL accepted: keep-alives every third of it must have time to go through the log. */
export const lockTtlMsMin = 300;

/** A held lock. */
export interface LockHandle {
  readonly name: string;
  readonly leaseId: number;
  /** The create revision of this holder's key: a fencing token, larger for every later holder. */
  readonly revision: number;
  /** Aborts when the lock is lost or released. */
  readonly signal: AbortSignal;
  /** Releases the lock (revokes its lease). Idempotent. */
  release(): Promise<void>;
}

export interface AcquireOptions {
  /** Lease TTL (default 10 s): how long the lock outlives a crashed holder. */
  readonly ttlMs?: number;
  /** Gives up waiting (the contender withdraws): rejects with CONCLAVE_ABORTED. */
  readonly signal?: AbortSignal;
}

export interface LocksParts {
  readonly kv: EmbeddedKv;
  readonly runtime: Pick<RaftRuntime, "waitApplied">;
  readonly database: Pick<Database, "kvRange" | "listen">;
  /** Aborts when the node stops: every lock is then lost. */
  readonly stopped: AbortSignal;
}

/** The key prefix of a lock's contenders. */
export function lockPrefix(name: string): string {
  return `lock/${name}/`;
}

/** The key a lease holds for a lock; fixed width so keys sort like lease ids. */
export function lockKey(name: string, leaseId: number): string {
  return `${lockPrefix(name)}${leaseId.toString(16).padStart(16, "0")}`;
}

export class Locks {
  readonly #parts: LocksParts;

  constructor(parts: LocksParts) {
    this.#parts = parts;
  }

  /** Waits until this node holds the lock `name`; see the module comment. */
  async acquire(name: string, options: AcquireOptions = {}): Promise<LockHandle> {
    const ttlMs = options.ttlMs ?? lockTtlMsDefault;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < lockTtlMsMin) {
      throw new ConclaveError(
        "CONCLAVE_BAD_REQUEST",
        `a lock's ttlMs is an integer ≥ ${lockTtlMsMin}, not ${ttlMs}`,
      );
    }
    const { kv } = this.#parts;
    const { leaseId } = await kv.grantLease(ttlMs);
    const keeper = new LeaseKeeper(kv, leaseId, ttlMs);
    try {
      const key = lockKey(name, leaseId);
      const entered = await kv.txn({
        compare: [{ key, target: "create_revision", operator: "=", value: 0 }],
        success: [{ op: "put", key, value: new Uint8Array(0), lease: leaseId }],
      });
      await this.#parts.runtime.waitApplied(entered.index);
      const revision = await this.#waitUntilOwner(name, key, keeper, options.signal);
      return this.#handle(name, key, leaseId, revision, keeper);
    } catch (error) {
      keeper.stop();
      await kv.revokeLease(leaseId).catch(() => {}); // best effort: it expires anyway
      throw error;
    }
  }

  /**
   * Runs `fn(signal)` holding the lock, then releases it (also when `fn` throws).
   *
   * @example
   * ```ts
   * await locks.withLock("migrations", async (signal) => migrate(signal));
   * ```
   */
  async withLock<T>(
    name: string,
    fn: (signal: AbortSignal) => Promise<T> | T,
    options: AcquireOptions = {},
  ): Promise<T> {
    const lock = await this.acquire(name, options);
    try {
      return await fn(lock.signal);
    } finally {
      await lock.release();
    }
  }

  /** Resolves with this key's create revision once it is the lowest under the prefix. */
  #waitUntilOwner(
    name: string,
    key: string,
    keeper: LeaseKeeper,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    const { database, stopped } = this.#parts;
    return new Promise<number>((resolve, reject) => {
      const check = (): void => {
        if (signal?.aborted || stopped.aborted || keeper.lost.aborted) {
          const why = keeper.lost.aborted ? "its lease was lost" : "the wait was aborted";
          finish(new ConclaveError("CONCLAVE_ABORTED", `Did not acquire the lock ${name}: ${why}.`));
          return;
        }
        const contenders = database.kvRange(lockPrefix(name), 10_000);
        const mine = contenders.find((contender) => contender.key === key);
        if (mine === undefined) {
          finish(new ConclaveError("CONCLAVE_LOCK_LOST", `The lease of lock ${name} expired while waiting.`));
          return;
        }
        const lowest = contenders.reduce((a, b) => (b.createRevision < a.createRevision ? b : a));
        if (lowest.key === key) finish(null, mine.createRevision);
      };
      const unlisten = database.listen((changes) => {
        if (changes.some((change) => change.key.startsWith(lockPrefix(name)))) check();
      });
      const signals = [signal, stopped, keeper.lost].filter((s): s is AbortSignal => s !== undefined);
      let done = false;
      const finish = (error: ConclaveError | null, revision = 0): void => {
        if (done) return;
        done = true;
        unlisten();
        for (const s of signals) s.removeEventListener("abort", check);
        if (error === null) resolve(revision);
        else reject(error);
      };
      for (const s of signals) s.addEventListener("abort", check);
      check();
    });
  }

  #handle(name: string, key: string, leaseId: number, revision: number, keeper: LeaseKeeper): LockHandle {
    const { database, kv, stopped } = this.#parts;
    const controller = new AbortController();
    const lose = (why: string): void => {
      if (!controller.signal.aborted)
        controller.abort(new ConclaveError("CONCLAVE_LOCK_LOST", `Lock ${name}: ${why}.`));
    };
    const unlisten = database.listen((changes) => {
      if (changes.some((change) => change.key === key && change.type === "delete"))
        lose("its key was deleted");
    });
    const onLost = (): void => lose("its lease could not be kept alive");
    const onStopped = (): void => lose("the node stopped");
    keeper.lost.addEventListener("abort", onLost);
    stopped.addEventListener("abort", onStopped);
    let released: Promise<void> | null = null;
    return {
      name,
      leaseId,
      revision,
      signal: controller.signal,
      release: () => {
        released ??= (async () => {
          unlisten();
          keeper.lost.removeEventListener("abort", onLost);
          stopped.removeEventListener("abort", onStopped);
          keeper.stop();
          lose("released");
          if (stopped.aborted) return;
          await kv.revokeLease(leaseId).catch((error: unknown) => {
            // Already expired: nothing left to release. Otherwise the lease expires after its TTL.
            if (!isConclaveError(error)) throw error;
          });
        })();
        return released;
      },
    };
  }
}

/** Keeps a lease alive every ttl/3; `lost` aborts when it is gone or unconfirmed for a whole TTL. */
class LeaseKeeper {
  readonly #controller = new AbortController();
  readonly #timer: ReturnType<typeof setInterval>;
  #lastConfirmedMs = performance.now();
  #inFlight = false;

  constructor(kv: EmbeddedKv, leaseId: number, ttlMs: number) {
    this.#timer = setInterval(
      () => {
        if (this.#inFlight) return;
        if (performance.now() - this.#lastConfirmedMs > ttlMs) {
          this.#lose();
          return;
        }
        this.#inFlight = true;
        kv.keepAliveLease(leaseId, { timeoutMs: Math.max(100, Math.floor(ttlMs / 3)) }).then(
          () => {
            this.#inFlight = false;
            this.#lastConfirmedMs = performance.now();
          },
          (error: unknown) => {
            this.#inFlight = false;
            const gone =
              isConclaveError(error, "CONCLAVE_LEASE_NOT_FOUND") ||
              isConclaveError(error, "CONCLAVE_LEASE_EXPIRED");
            if (gone) this.#lose();
          },
        );
      },
      Math.floor(ttlMs / 3),
    );
    this.#timer.unref();
  }

  get lost(): AbortSignal {
    return this.#controller.signal;
  }

  #lose(): void {
    this.stop();
    this.#controller.abort();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
