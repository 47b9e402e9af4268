/**
 * Idempotency keys: a write may carry a key (HTTP `Idempotency-Key`), so that a client can
 * retry a write whose outcome it did not learn (timeout, lost connection, failover) without
 * applying it twice. The keyed command's entry records, in the same SQLite transaction, the key,
 * a hash of the client's request and the result; an entry with a key already recorded applies
 * nothing and returns the recorded result (`replayed: true`), or — when the same key came with a
 * different request — a `CONCLAVE_IDEMPOTENCY_KEY_REUSED` error. Keys are kept for
 * {@link idempotencyWindowEntries} log entries, pruned by entry index (the same on every member,
 * never by wall clock); a retry after the window may apply twice.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Packr } from "msgpackr";
import { StatementCache } from "./statement-cache.ts";

/** Log entries a key is remembered for. */
export const idempotencyWindowEntries = 100_000;
/** Pruning runs on entries whose index is a multiple of this (deterministic, cheap). */
const pruneEveryEntries = 1024;

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

  constructor(db: DatabaseSync) {
    this.#statements = new StatementCache(db);
  }

  attach(db: DatabaseSync): void {
    this.#statements.attach(db);
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

  /** Records the key with the entry's result; prunes keys older than the window now and then. */
  record(key: string, requestSha256: string, result: unknown, index: number): void {
    this.#sql(
      "INSERT INTO _conclave_idempotency (key, request_sha256, result, entry_index) VALUES (?, ?, ?, ?)",
    ).run(key, requestSha256, resultPackr.pack(result), index);
  }

  /** Deletes keys older than the window (call on every entry; it acts every 1,024 entries). */
  prune(index: number): void {
    if (index % pruneEveryEntries !== 0) return;
    this.#sql("DELETE FROM _conclave_idempotency WHERE entry_index <= ?").run(
      index - idempotencyWindowEntries,
    );
  }
}
