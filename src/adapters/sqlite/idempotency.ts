/**
 * Idempotency keys: a write may carry a key (HTTP `Idempotency-Key`), so that a client can
 * retry a write whose outcome it did not learn (timeout, lost connection, failover) without
 * applying it twice. The keyed command's entry records, in the same SQLite transaction, the key,
 * a hash of the client's request and the result; an entry with a key already recorded applies
 * nothing and returns the recorded result (`replayed: true`), or — when the same key came with a
 * different request — a `CONCLAVE_IDEMPOTENCY_KEY_REUSED` error. Keys are kept for
 * {@link idempotencyWindowEntriesDefault} log entries, pruned by entry index (the same on every
 * member, never by wall clock); a retry after the window may apply twice. A result larger than
 * {@link idempotencyResultBytesMax} is not kept: its replay is a `CONCLAVE_IDEMPOTENCY_RESULT_NOT_KEPT`
 * error that says the write was applied.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Packr } from "msgpackr";
import { assert } from "../../lib/assert.ts";
import { StatementCache } from "./statement-cache.ts";

/**
 * Default: log entries a key is remembered for. A retry whose entry comes at most this many
 * entries after the original's is replayed. Must be the same on every member.
 */
export const idempotencyWindowEntriesDefault = 100_000;
/**
 * Largest recorded result (msgpack bytes). A bigger one (a KV transaction that read large
 * values) is replaced by a marker, so the table stays near window × this at worst.
 */
export const idempotencyResultBytesMax = 64 * 1024;

const schemaSql = `
CREATE TABLE IF NOT EXISTS _conclave_idempotency (
  key TEXT PRIMARY KEY,
  request_sha256 TEXT NOT NULL,
  result BLOB NOT NULL,
  entry_index INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS _conclave_idempotency_by_index ON _conclave_idempotency (entry_index);
`;

// Results hold bigints (row ids) and bytes (KV values): plain msgpack keeps both exact.
const resultPackr = new Packr({ useRecords: false, int64AsType: "bigint" });

/** Creates the table when missing (the same DDL on every member). */
export function createIdempotencySchema(db: DatabaseSync): void {
  db.exec(schemaSql);
}

/** What a keyed entry finds before applying. */
export type KeyLookup =
  | { readonly kind: "new" }
  | { readonly kind: "replay"; readonly result: unknown }
  | { readonly kind: "reused"; readonly message: string };

/** The idempotency table of one connection. */
export class IdempotencyTable {
  readonly #statements: StatementCache;
  readonly #windowEntries: number;
  /**
   * The lowest entry index recorded: null when the table is empty, undefined when not known.
   * Never above the truth (a rolled-back record only makes it low), so prune skips its DELETE
   * only when there is nothing to delete — on every entry when no write carries a key.
   */
  #oldest: number | null | undefined = undefined;

  constructor(db: DatabaseSync, windowEntries = idempotencyWindowEntriesDefault) {
    assert(Number.isSafeInteger(windowEntries) && windowEntries >= 1, "the window is a positive integer");
    this.#statements = new StatementCache(db);
    this.#windowEntries = windowEntries;
  }

  attach(db: DatabaseSync): void {
    this.#statements.attach(db);
    this.#oldest = undefined;
  }

  #sql(text: string): StatementSync {
    return this.#statements.get(text);
  }

  lookup(key: string, requestSha256: string): KeyLookup {
    const row = this.#sql(
      "SELECT request_sha256, result, entry_index FROM _conclave_idempotency WHERE key = ?",
    ).get(key) as { request_sha256: string; result: Uint8Array; entry_index: number } | undefined;
    if (row === undefined) return { kind: "new" };
    if (row.request_sha256 !== requestSha256) {
      return {
        kind: "reused",
        message: `the idempotency key "${key}" was used for a different request (entry ${row.entry_index}); use a new key for a new request`,
      };
    }
    return { kind: "replay", result: resultPackr.unpack(row.result) };
  }

  /** Records the key with the entry's result (or, when too large, a marker saying so). */
  record(key: string, requestSha256: string, result: unknown, index: number): void {
    const packed = resultPackr.pack(result);
    const kept =
      packed.byteLength <= idempotencyResultBytesMax
        ? packed
        : resultPackr.pack(notKept(key, index, packed.byteLength));
    this.#sql(
      "INSERT INTO _conclave_idempotency (key, request_sha256, result, entry_index) VALUES (?, ?, ?, ?)",
    ).run(key, requestSha256, kept, index);
    if (this.#oldest === null) this.#oldest = index;
  }

  /**
   * Forgets the keys the entry at `index` no longer covers (recorded more than the window
   * before it). Called after every entry, failed or not, inside its transaction; one index seek
   * when there is nothing to delete.
   */
  prune(index: number): void {
    const cutoff = index - this.#windowEntries;
    if (this.#oldest === undefined) {
      const row = this.#sql("SELECT min(entry_index) AS oldest FROM _conclave_idempotency").get() as {
        oldest: number | null;
      };
      this.#oldest = row.oldest;
    }
    if (this.#oldest === null || this.#oldest > cutoff) return;
    this.#sql("DELETE FROM _conclave_idempotency WHERE entry_index <= ?").run(cutoff);
    this.#oldest = undefined;
  }
}

/** The error result a replay gets when the original result was too large to keep. */
function notKept(key: string, index: number, bytes: number): unknown {
  return {
    ok: false,
    error: {
      code: "CONCLAVE_IDEMPOTENCY_RESULT_NOT_KEPT",
      message: `the write with idempotency key "${key}" was applied (entry ${index}), but its result (${bytes} bytes) is larger than idempotencyResultBytesMax (${idempotencyResultBytesMax} bytes) and was not kept for retries; read the data to see the write's effect`,
    },
  };
}
