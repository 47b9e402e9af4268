/**
 * The database port: what the HTTP layer (src/admin) and the cluster tasks need of the
 * replicated SQLite + KV state machine, without depending on the adapter. The composition root
 * passes an object implementing it (over `SqliteStateMachine`).
 *
 * Contract:
 * - every read (`query`, `kvGet`, `kvRange`, `kvRevision`, `changesSince`) is local: it sees this
 *   member's state as of its last applied entry. The caller decides the consistency level
 *   (ReadIndex, a no-op through the log, or none) *before* reading.
 * - `query` only reads; it throws `ConclaveError` `CONCLAVE_QUERY_REFUSED` (not a read, several
 *   statements) or `CONCLAVE_QUERY_FAILED` (SQL error). Results are bounded (`truncated`).
 * - `prepareSql` runs on the primary before proposing: non-deterministic SQL is rewritten to
 *   literals; what cannot be replicated throws `CONCLAVE_SQL_REFUSED` (`details.statementIndex`,
 *   `details.construct`).
 * - `encodeCommand` validates and encodes a log entry; throws `CONCLAVE_COMMAND_INVALID` or
 *   `CONCLAVE_COMMAND_TOO_LARGE`.
 * - `listen` listeners run inside the apply loop, after each committed entry that changed keys:
 *   they must be quick and must not throw.
 *
 * @example
 * ```ts
 * const data = database.encodeCommand({ kind: "sql", statements: database.prepareSql([{ sql }]) });
 * const { result } = await runtime.propose(data); // a DatabaseApplyResult
 * await runtime.readIndex();
 * database.query("SELECT count(*) AS n FROM t"); // { rows: [{ n: 1 }], truncated: false }
 * ```
 */

import type { ClusterCommand, ClusterMetadata } from "./cluster-metadata.ts";

/** A value SQLite can bind or return: NULL, INTEGER (number, or bigint beyond 2^53), REAL, TEXT, BLOB. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** One SQL statement with its positional parameters. */
export interface SqlStatement {
  readonly sql: string;
  readonly params?: readonly SqlValue[];
}

/** Rows of a local read. */
export interface QueryResult {
  readonly rows: readonly Readonly<Record<string, SqlValue>>[];
  /** True when the row or byte limit cut the result short. */
  readonly truncated: boolean;
}

/** A stored key with its revisions. */
export interface KeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  /** Puts since the key was (re)created; 1 after the first. */
  readonly version: number;
  /** Lease id, 0 for none. */
  readonly lease: number;
}

/** One KV change, as watches see it. */
export interface KvChange {
  readonly revision: number;
  readonly key: string;
  readonly type: "put" | "delete";
  /** The new value of a put; null for a delete. */
  readonly value: Uint8Array | null;
}

/** Changes after a revision, or the oldest revision still kept when some were compacted. */
export type ChangesSince =
  | { readonly ok: true; readonly changes: readonly KvChange[] }
  | {
      readonly ok: false;
      readonly error: {
        readonly code: "compacted";
        readonly message: string;
        readonly oldestRevision: number;
      };
    };

/** One compare of a KV transaction (a missing key has revisions and version 0). */
export type KvCompare =
  | {
      readonly key: string;
      readonly target: "value";
      readonly operator: "=" | "!=";
      /** null: the key is absent. */
      readonly value: Uint8Array | null;
    }
  | {
      readonly key: string;
      readonly target: "mod_revision" | "create_revision" | "version";
      readonly operator: "=" | "!=" | "<" | ">";
      readonly value: number;
    };

/** One operation of a KV transaction branch. */
export type KvTxnOperation =
  | { readonly op: "put"; readonly key: string; readonly value: Uint8Array; readonly lease?: number }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "get"; readonly key: string };

/** A KV write (see src/adapters/sqlite/kv-store.ts for what each does). */
export type KvOperation =
  | Extract<KvTxnOperation, { op: "put" } | { op: "delete" }>
  | {
      readonly op: "cas";
      readonly key: string;
      readonly expect: { readonly value: Uint8Array | null } | { readonly modRevision: number };
      readonly value: Uint8Array;
      readonly lease?: number;
    }
  | {
      readonly op: "txn";
      readonly compare: readonly KvCompare[];
      readonly success: readonly KvTxnOperation[];
      readonly failure: readonly KvTxnOperation[];
    }
  | { readonly op: "lease-grant"; readonly ttlMs: number; readonly nowMs: number }
  | { readonly op: "lease-keepalive"; readonly leaseId: number; readonly nowMs: number }
  | { readonly op: "lease-revoke"; readonly leaseId: number }
  | { readonly op: "lease-expire"; readonly nowMs: number }
  /**
   * Every lease expires no earlier than `nowMs` + its TTL: what each new primary proposes once it
   * sees a lease, before any `lease-expire` (src/cluster/lease-expiry.ts), so that no lease
   * expires early by its clock (etcd's Promote).
   */
  | { readonly op: "lease-renew-all"; readonly nowMs: number };

/** A command of the replicated database: one atomic SQL transaction, one KV operation, or a cluster metadata change. */
export type DatabaseCommand =
  | { readonly kind: "sql"; readonly statements: readonly SqlStatement[] }
  | ({ readonly kind: "kv" } & KvOperation)
  | ClusterCommand
  | {
      /** A SQL or KV write with an idempotency key: applied once, its result replayed for retries. */
      readonly kind: "keyed";
      readonly key: string;
      /** SHA-256 (hex) of the client's request (a reused key with another request is refused). */
      readonly requestSha256: string;
      readonly command:
        | { readonly kind: "sql"; readonly statements: readonly SqlStatement[] }
        | ({ readonly kind: "kv" } & KvOperation);
    };

/** The outcome of one statement of an SQL command. */
export interface StatementResult {
  readonly rowsChanged: number;
  readonly lastInsertRowid: number | bigint;
}

/**
 * What applying a command returned (the proposal's result), the same on every member: SQL
 * results, a KV result (`revision` plus details), or the error that rolled the entry back.
 */
export type DatabaseApplyResult =
  | { readonly ok: true; readonly results: readonly StatementResult[] }
  | { readonly ok: true; readonly revision: number; readonly [detail: string]: unknown }
  | {
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string; readonly statementIndex?: number };
    };

/** Limits the HTTP layer checks before it proposes anything. */
export interface DatabaseLimits {
  readonly kvKeyBytesMax: number;
  readonly kvValueBytesMax: number;
  /** Most keys one range read returns. */
  readonly kvRangeLimitMax: number;
  /** Most changes one `changesSince` returns. */
  readonly changesPerReadMax: number;
  /** Largest encoded command (log entry payload). */
  readonly commandBytesMax: number;
  readonly sqlStatementsPerCommandMax: number;
}

/** The replicated database as the HTTP layer sees it. See the module comment for the contract. */
export interface Database {
  readonly limits: DatabaseLimits;
  /** The cluster's replicated metadata (members, departures, tombstones, settings). */
  readonly cluster: ClusterMetadata;
  /** A read-only statement at this member's applied index. */
  query(sql: string, params?: readonly SqlValue[]): QueryResult;
  kvGet(key: string): KeyValue | null;
  /** Keys starting with `prefix`, in byte order, at most `limit` (≤ `limits.kvRangeLimitMax`). */
  kvRange(prefix: string, limit: number): readonly KeyValue[];
  /** The store's current revision. */
  kvRevision(): number;
  /** Changes with a revision greater than `revision` under `prefix`, oldest first, at most `limit`. */
  changesSince(revision: number, prefix: string, limit: number): ChangesSince;
  /** Adds a listener for committed changes; returns its remover. Throws `CONCLAVE_WATCH_LIMIT` when full. */
  listen(listener: (changes: readonly KvChange[]) => void): () => void;
  /** When the first lease expires (the primary's clock, ms since the epoch), or null without leases. */
  earliestLeaseExpiryMs(): number | null;
  /** Rewrites non-deterministic SQL with the primary's clock and randomness (see the contract). */
  prepareSql(statements: readonly SqlStatement[]): SqlStatement[];
  /** Validates and encodes a command for `RaftRuntime.propose`. */
  encodeCommand(command: DatabaseCommand): Uint8Array;
  /**
   * An encoded command with its wall-clock reading (lease grants and keep-alives) replaced by
   * `nowMs`; any other command as it is. The primary's side of `stampAtPrimary` (see
   * src/runtime/raft-runtime.ts CallOptions).
   */
  stampWallClock(data: Uint8Array, nowMs: number): Uint8Array;
  /**
   * SHA-256 (hex) of a compact copy of the database (`VACUUM INTO`, as a snapshot), with the
   * applied index it was taken at: equal on members at the same index. Costs a full copy.
   */
  contentHash(): Promise<{ readonly sha256: string; readonly appliedIndex: number }>;
}
