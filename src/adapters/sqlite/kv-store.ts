/**
 * An etcd-like key-value store kept in the replicated SQLite database: revisions, compare-and-set,
 * prefix ranges, small transactions, TTL leases and a bounded change history for watches.
 *
 * Writes arrive as `{ kind: "kv", … }` commands that {@link SqliteStateMachine} applies inside
 * the entry's transaction; reads (`get`, `range`, `changesSince`) are local. Lease expiry is
 * decided by the `nowMs` carried in `lease-expire` commands (the primary's clock, in the log),
 * never by a member's own clock, so every member deletes the same keys at the same index; a new
 * primary proposes `lease-renew-all` with its clock before its first expiry (src/cluster/lease-expiry.ts).
 *
 * @example
 * ```ts
 * await propose(encodeCommand({ kind: "kv", op: "put", key: "config/a", value: bytes }));
 * machine.kv.get("config/a"); // { key, value, createRevision, modRevision, version, lease }
 * ```
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { KvCompare, KvOperation, KvTxnOperation } from "./commands.ts";
import { keyBytes, prefixEnd } from "./kv-schema.ts";
import { KvWatchHistory } from "./kv-watch.ts";
import { StatementCache } from "./statement-cache.ts";

/** Most keys one `range` returns. */
export const kvRangeLimitMax = 10_000;
/** Most leases one `lease-expire` command expires (the rest go with the next one). */
export const leaseExpireBatchMax = 1000;

// The shapes the HTTP layer sees are the port's (src/ports/database.ts); the store returns them.
import type { KeyValue, KvChange } from "../../ports/database.ts";

export type { KeyValue, KvChange };

/** A KV command's outcome (the same on every member). */
export type KvResult =
  | { readonly ok: true; readonly revision: number; readonly [detail: string]: unknown }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

type TxnOpResult =
  | { readonly op: "put"; readonly created: boolean }
  | { readonly op: "delete"; readonly deleted: number }
  | { readonly op: "get"; readonly kv: KeyValue | null };

/** A key's row with its value, as reads return it (and as earlier layouts stored it). */
export interface KeyRow {
  key: Uint8Array;
  value: Uint8Array;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease: number;
}

/** A key with its value, which lives in the history row `value_row` points at (kv-schema.ts). */
const selectKeyValues = `SELECT k.key, h.value, k.create_revision, k.mod_revision, k.version, k.lease
  FROM _conclave_kv AS k JOIN _conclave_kv_history AS h ON h.rowid = k.value_row`;

function toKeyValue(row: KeyRow): KeyValue {
  return {
    key: Buffer.from(row.key).toString("utf8"),
    value: new Uint8Array(row.value),
    createRevision: row.create_revision,
    modRevision: row.mod_revision,
    version: row.version,
    lease: row.lease,
  };
}

function failure(code: string, message: string): KvResult {
  return { ok: false, error: { code, message } };
}

/** The KV store over one connection. See the module comment. */
export class KvStore {
  readonly #statements: StatementCache;
  readonly #history: KvWatchHistory;
  /** The revision this entry writes at (current + 1), fixed at the entry's first change. */
  #entryRevision: number | null = null;
  #entryChanges: KvChange[] = [];
  /** The revision in `_conclave_kv_meta`, once read (null: read it). */
  #revision: number | null = null;
  /** The cached revision is ahead of `_conclave_kv_meta` until {@link flushRevision}. */
  #revisionUnwritten = false;

  constructor(db: DatabaseSync, historyRevisionsMax: number) {
    this.#statements = new StatementCache(db);
    this.#history = new KvWatchHistory(db, historyRevisionsMax);
  }

  /** Switches to a reopened connection (after a restore); listeners stay registered. */
  attach(db: DatabaseSync): void {
    this.#statements.attach(db);
    this.#history.attach(db);
    this.#revision = null;
    this.#revisionUnwritten = false;
    this.abandonEntry();
  }

  /** The change history and the listeners the HTTP layer streams watches from. */
  get watches(): KvWatchHistory {
    return this.#history;
  }

  #sql(text: string): StatementSync {
    return this.#statements.get(text);
  }

  /** The current revision (bumped once per entry that changes a key). */
  get revision(): number {
    // Cached: read on every write and every read answer. Only finishEntry changes it (a failed
    // entry never reaches it), and a restore re-attaches, which forgets the cache.
    this.#revision ??= (
      this.#sql("SELECT revision FROM _conclave_kv_meta WHERE id = 0").get() as { revision: number }
    ).revision;
    return this.#revision;
  }

  /** Local read of one key. */
  get(key: string): KeyValue | null {
    const row = this.#sql(`${selectKeyValues} WHERE k.key = ?`).get(keyBytes(key)) as KeyRow | undefined;
    return row === undefined ? null : toKeyValue(row);
  }

  /** Local read of the keys starting with `prefix`, in byte order, at most `limit` (≤ kvRangeLimitMax). */
  range(prefix: string, limit = kvRangeLimitMax): KeyValue[] {
    const bounded = Math.max(0, Math.min(limit, kvRangeLimitMax));
    const start = keyBytes(prefix);
    const end = prefixEnd(start);
    const rows =
      end === null
        ? this.#sql(`${selectKeyValues} WHERE k.key >= ? ORDER BY k.key LIMIT ?`).all(start, bounded)
        : this.#sql(`${selectKeyValues} WHERE k.key >= ? AND k.key < ? ORDER BY k.key LIMIT ?`).all(
            start,
            end,
            bounded,
          );
    return (rows as unknown as KeyRow[]).map(toKeyValue);
  }

  /** When the first lease expires (the `nowMs` clock of the commands), or null when there is none. */
  earliestLeaseExpiryMs(): number | null {
    const row = this.#sql("SELECT min(expires_at_ms) AS at FROM _conclave_kv_lease").get() as {
      at: number | null;
    };
    return row.at;
  }

  /** Applies one operation inside the caller's transaction; the caller rolls back when `ok` is false. */
  apply(operation: KvOperation): KvResult {
    this.#entryRevision = null;
    this.#entryChanges = [];
    switch (operation.op) {
      case "put": {
        const problem = this.#leaseProblem(operation.lease);
        if (problem !== null) return problem;
        return {
          ok: true,
          revision: this.#nextRevision(),
          created: this.#put(operation.key, operation.value, operation.lease),
        };
      }
      case "delete": {
        const deleted = this.#delete(operation.key);
        return { ok: true, revision: this.#revisionAfter(), deleted };
      }
      case "cas":
        return this.#compareAndSet(operation);
      case "txn":
        return this.#txn(operation.compare, operation.success, operation.failure);
      case "lease-grant":
        return this.#leaseGrant(operation.ttlMs, operation.nowMs);
      case "lease-keepalive":
        return this.#leaseKeepAlive(operation.leaseId, operation.nowMs);
      case "lease-revoke":
        return this.#leaseRevoke(operation.leaseId);
      case "lease-expire":
        return this.#leaseExpire(operation.nowMs);
      case "lease-renew-all":
        return this.#leaseRenewAll(operation.nowMs);
    }
  }

  /** After the entry committed: records the revision, trims history, tells the listeners. */
  finishEntry(): KvChange[] {
    const changes = this.#entryChanges;
    if (this.#entryRevision !== null) {
      // Written to _conclave_kv_meta once per transaction, by flushRevision before its commit:
      // one UPDATE per put was a fifth of the CPU of applying one.
      this.#revision = this.#entryRevision;
      this.#revisionUnwritten = true;
      this.#history.compact(this.#entryRevision);
    }
    this.#entryRevision = null;
    this.#entryChanges = [];
    return changes;
  }

  /** Writes the revision of the entries finished since the last call (inside the open transaction). */
  flushRevision(): void {
    if (!this.#revisionUnwritten) return;
    this.#sql("UPDATE _conclave_kv_meta SET revision = ? WHERE id = 0").run(this.#revision);
    this.#revisionUnwritten = false;
  }

  /** Forgets the entry's pending changes (its transaction was rolled back). */
  abandonEntry(): void {
    this.#entryRevision = null;
    this.#entryChanges = [];
  }

  #nextRevision(): number {
    if (this.#entryRevision === null) this.#entryRevision = this.revision + 1;
    return this.#entryRevision;
  }

  /** The revision after this entry: the new one if it changed anything, else the current one. */
  #revisionAfter(): number {
    return this.#entryRevision ?? this.revision;
  }

  /** Records the change in the history; the rowid of its row, which holds the value. */
  #record(key: string, type: KvChange["type"], value: Uint8Array | null): number {
    const revision = this.#nextRevision();
    const change = { revision, key, type, value };
    const row = this.#history.record(change, this.#entryChanges.length);
    this.#entryChanges.push(change);
    return row;
  }

  /**
   * Inserts or updates the key; true when it was created. The value goes only into its history
   * row; the key's row points at it. Reading the key's row first (a small row now, no value)
   * says whether it exists and which history row its old value was in: that row is deleted here
   * when compaction has passed it, since compaction only looks at newer rows.
   */
  #put(key: string, value: Uint8Array, lease = 0): boolean {
    const revision = this.#nextRevision();
    const bytes = keyBytes(key);
    const old = this.#sql("SELECT rowid AS id, mod_revision, value_row FROM _conclave_kv WHERE key = ?").get(
      bytes,
    ) as { id: number; mod_revision: number; value_row: number } | undefined;
    const valueRow = this.#record(key, "put", value);
    if (old === undefined) {
      this.#sql(
        `INSERT INTO _conclave_kv (key, create_revision, mod_revision, version, lease, value_row)
         VALUES (?, ?, ?, 1, ?, ?)`,
      ).run(bytes, revision, revision, lease, valueRow);
      return true;
    }
    this.#sql(
      "UPDATE _conclave_kv SET mod_revision = ?, version = version + 1, lease = ?, value_row = ? WHERE rowid = ?",
    ).run(revision, lease, valueRow, old.id);
    this.#history.release(old.value_row, old.mod_revision);
    return false;
  }

  #delete(key: string): number {
    const old = this.#sql("DELETE FROM _conclave_kv WHERE key = ? RETURNING mod_revision, value_row").get(
      keyBytes(key),
    ) as { mod_revision: number; value_row: number } | undefined;
    if (old === undefined) return 0;
    this.#record(key, "delete", null);
    this.#history.release(old.value_row, old.mod_revision);
    return 1;
  }

  #leaseProblem(lease: number | undefined): KvResult | null {
    if (lease === undefined) return null;
    const row = this.#sql("SELECT id FROM _conclave_kv_lease WHERE id = ?").get(lease);
    return row === undefined
      ? failure("CONCLAVE_LEASE_NOT_FOUND", `lease ${lease} does not exist (expired or revoked)`)
      : null;
  }

  #compareAndSet(operation: Extract<KvOperation, { op: "cas" }>): KvResult {
    const compare: KvCompare =
      "modRevision" in operation.expect
        ? { key: operation.key, target: "mod_revision", operator: "=", value: operation.expect.modRevision }
        : { key: operation.key, target: "value", operator: "=", value: operation.expect.value };
    const put: KvTxnOperation = { op: "put", key: operation.key, value: operation.value };
    const success = operation.lease === undefined ? put : { ...put, lease: operation.lease };
    const result = this.#txn([compare], [success], []);
    return result.ok ? { ok: true, revision: result.revision, succeeded: result.succeeded } : result;
  }

  #compareHolds(compare: KvCompare): boolean {
    const current = this.get(compare.key);
    if (compare.target === "value") {
      const same =
        current === null || compare.value === null
          ? current === null && compare.value === null
          : Buffer.from(current.value).equals(compare.value);
      return compare.operator === "=" ? same : !same;
    }
    // A missing key has revisions and version 0, as in etcd.
    const actual =
      current === null
        ? 0
        : compare.target === "mod_revision"
          ? current.modRevision
          : compare.target === "create_revision"
            ? current.createRevision
            : current.version;
    if (compare.operator === "=") return actual === compare.value;
    if (compare.operator === "!=") return actual !== compare.value;
    return compare.operator === "<" ? actual < compare.value : actual > compare.value;
  }

  #txn(
    compares: readonly KvCompare[],
    success: readonly KvTxnOperation[],
    failed: readonly KvTxnOperation[],
  ): KvResult {
    const succeeded = compares.every((compare) => this.#compareHolds(compare));
    const operations = succeeded ? success : failed;
    for (const operation of operations) {
      const problem = operation.op === "put" ? this.#leaseProblem(operation.lease) : null;
      if (problem !== null) return problem;
    }
    const results: TxnOpResult[] = operations.map((operation) => {
      if (operation.op === "put")
        return { op: "put", created: this.#put(operation.key, operation.value, operation.lease) };
      if (operation.op === "delete") return { op: "delete", deleted: this.#delete(operation.key) };
      return { op: "get", kv: this.get(operation.key) };
    });
    return { ok: true, revision: this.#revisionAfter(), succeeded, results };
  }

  #leaseGrant(ttlMs: number, nowMs: number): KvResult {
    const { lastInsertRowid } = this.#sql(
      "INSERT INTO _conclave_kv_lease (ttl_ms, expires_at_ms) VALUES (?, ?)",
    ).run(ttlMs, nowMs + ttlMs);
    return {
      ok: true,
      revision: this.#revisionAfter(),
      leaseId: Number(lastInsertRowid),
      expiresAtMs: nowMs + ttlMs,
    };
  }

  #leaseKeepAlive(leaseId: number, nowMs: number): KvResult {
    const lease = this.#sql("SELECT ttl_ms, expires_at_ms FROM _conclave_kv_lease WHERE id = ?").get(
      leaseId,
    ) as { ttl_ms: number; expires_at_ms: number } | undefined;
    if (lease === undefined) return failure("CONCLAVE_LEASE_NOT_FOUND", `lease ${leaseId} does not exist`);
    if (lease.expires_at_ms <= nowMs) {
      return failure(
        "CONCLAVE_LEASE_EXPIRED",
        `lease ${leaseId} expired at ${lease.expires_at_ms} ms; grant a new one`,
      );
    }
    const expiresAtMs = nowMs + lease.ttl_ms;
    this.#sql("UPDATE _conclave_kv_lease SET expires_at_ms = ? WHERE id = ?").run(expiresAtMs, leaseId);
    return { ok: true, revision: this.#revisionAfter(), leaseId, expiresAtMs };
  }

  /** Deletes a lease and its keys; the number of keys deleted. */
  #dropLease(leaseId: number): number {
    const keys = this.#sql("SELECT key FROM _conclave_kv WHERE lease = ? ORDER BY key").all(
      leaseId,
    ) as unknown as {
      key: Uint8Array;
    }[];
    for (const { key } of keys) this.#delete(Buffer.from(key).toString("utf8"));
    this.#sql("DELETE FROM _conclave_kv_lease WHERE id = ?").run(leaseId);
    return keys.length;
  }

  #leaseRevoke(leaseId: number): KvResult {
    if (this.#sql("SELECT id FROM _conclave_kv_lease WHERE id = ?").get(leaseId) === undefined) {
      return failure("CONCLAVE_LEASE_NOT_FOUND", `lease ${leaseId} does not exist`);
    }
    const deletedKeys = this.#dropLease(leaseId);
    return { ok: true, revision: this.#revisionAfter(), deletedKeys };
  }

  /**
   * Moves every lease's expiry to at least `nowMs` + its TTL. Proposed by each new primary with its
   * own clock before it expires anything: a lease was granted or renewed by another member's clock,
   * and a primary whose clock runs ahead would otherwise expire it early by the difference. Leases
   * may live up to one TTL longer across a change of primary, never shorter (as etcd's do).
   */
  #leaseRenewAll(nowMs: number): KvResult {
    const { changes } = this.#sql(
      "UPDATE _conclave_kv_lease SET expires_at_ms = ? + ttl_ms WHERE expires_at_ms < ? + ttl_ms",
    ).run(nowMs, nowMs);
    return { ok: true, revision: this.#revisionAfter(), renewedLeases: Number(changes) };
  }

  #leaseExpire(nowMs: number): KvResult {
    const expired = this.#sql(
      "SELECT id FROM _conclave_kv_lease WHERE expires_at_ms <= ? ORDER BY expires_at_ms, id LIMIT ?",
    ).all(nowMs, leaseExpireBatchMax) as unknown as { id: number }[];
    let deletedKeys = 0;
    for (const { id } of expired) deletedKeys += this.#dropLease(id);
    return {
      ok: true,
      revision: this.#revisionAfter(),
      expiredLeases: expired.map(({ id }) => id),
      deletedKeys,
    };
  }
}
