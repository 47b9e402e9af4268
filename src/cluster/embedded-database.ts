/**
 * The replicated database for an application that embeds a node: SQL (`EmbeddedDb`) and the
 * key-value store (`EmbeddedKv`). Every write goes through the same runtime path as the HTTP API:
 * encode → `propose(…, { forward: true })`, so a secondary's write is forwarded to the primary
 * over the cluster transport. Reads wait for the asked consistency, then read this member's copy.
 *
 * Failures are `ConclaveError`s: the runtime's codes (CONCLAVE_NOT_PRIMARY when no primary is
 * known, CONCLAVE_TIMEOUT / _OUTCOME_UNKNOWN when the outcome is unknown, …), and a failed
 * statement or KV operation with its own code (e.g. `CONCLAVE_SQL_FAILED`, `CONCLAVE_LEASE_NOT_FOUND`)
 * and `details.outcome: "rolled-back"` — the entry was applied as a no-op on every member.
 *
 * @example
 * ```ts
 * await conclave.db.execute([{ sql: "INSERT INTO jobs (name) VALUES (?)", params: ["report"] }]);
 * const { rows } = await conclave.db.query("SELECT count(*) AS n FROM jobs");
 * await conclave.kv.put("config/mode", "fast");
 * (await conclave.kv.get("config/mode"))?.value; // Uint8Array
 * ```
 */
import { ConclaveError } from "../lib/errors.ts";
import type {
  Database,
  DatabaseApplyResult,
  DatabaseCommand,
  KeyValue,
  KvCompare,
  KvTxnOperation,
  QueryResult,
  SqlStatement,
  SqlValue,
  StatementResult,
} from "../ports/database.ts";
import type { CallOptions, RaftRuntime } from "../runtime/raft-runtime.ts";
import { type Consistency, readBarrier } from "./read-barrier.ts";

/** What the embedded database needs of the node. */
export interface EmbeddedDatabaseParts {
  readonly runtime: Pick<RaftRuntime, "propose" | "readIndex" | "waitApplied" | "status">;
  readonly database: Database;
  /** The clock lease commands are stamped with (lease-clock.ts). */
  readonly leaseClockMs: () => number;
}

/** Timeout and cancellation of one operation (the timeout default is `cluster.sync_timeout_ms`). */
export interface OperationOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** A read's options: its consistency level (default `linearizable`, see read-barrier.ts). */
export interface EmbeddedReadOptions extends OperationOptions {
  readonly consistency?: Consistency;
}

/** A committed write: the log position it was applied at. */
export interface WriteOutcome {
  readonly index: number;
  readonly term: number;
}

function callOptions(options: OperationOptions, command: DatabaseCommand): CallOptions {
  return {
    forward: true,
    ...(carriesWallClock(command) ? { stampAtPrimary: true } : {}),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
}

/**
 * True for commands stamped with this node's wall clock (lease grants and keep-alives): when
 * forwarded, the primary restamps them with its clock, the one that expires leases, so a
 * secondary's skewed clock never shortens or stretches a lease. The primary's side of the same list
 * is `clockStampedLeaseOps` in src/adapters/sqlite/commands.ts: keep the two the same.
 */
export function carriesWallClock(command: DatabaseCommand): boolean {
  return command.kind === "kv" && (command.op === "lease-grant" || command.op === "lease-keepalive");
}

/** Proposes `command` (forwarded from a secondary); an error result throws its ConclaveError. */
async function propose(
  parts: EmbeddedDatabaseParts,
  command: DatabaseCommand,
  options: OperationOptions,
): Promise<WriteOutcome & { readonly result: Readonly<Record<string, unknown>> }> {
  const data = parts.database.encodeCommand(command);
  const { index, term, result } = await parts.runtime.propose(data, callOptions(options, command));
  const applied = result as DatabaseApplyResult;
  if (!applied.ok) {
    const { code, message, statementIndex } = applied.error;
    const details: Record<string, unknown> = { outcome: "rolled-back", index, term };
    if (statementIndex !== undefined) details.statementIndex = statementIndex;
    throw new ConclaveError(code, message, details);
  }
  return { index, term, result: applied };
}

/** SQL on the replicated database. */
export class EmbeddedDb {
  readonly #parts: EmbeddedDatabaseParts;

  constructor(parts: EmbeddedDatabaseParts) {
    this.#parts = parts;
  }

  /**
   * Runs `statements` as one atomic transaction through the log (non-deterministic SQL is
   * rewritten to literals first, with this node's clock; what cannot be replicated throws
   * `CONCLAVE_SQL_REFUSED`). A failing statement rolls the whole transaction back everywhere.
   *
   * @example
   * ```ts
   * const { results } = await db.execute([{ sql: "INSERT INTO t (v) VALUES (?)", params: [1] }]);
   * results[0]?.lastInsertRowid;
   * ```
   */
  async execute(
    statements: readonly SqlStatement[],
    options: OperationOptions = {},
  ): Promise<WriteOutcome & { readonly results: readonly StatementResult[] }> {
    const prepared = this.#parts.database.prepareSql(statements);
    const { index, term, result } = await propose(
      this.#parts,
      { kind: "sql", statements: prepared },
      options,
    );
    return { index, term, results: result.results as readonly StatementResult[] };
  }

  /**
   * One read-only statement, at the asked consistency (default linearizable).
   *
   * @example
   * ```ts
   * const { rows } = await db.query("SELECT v FROM t WHERE id = ?", [1], { consistency: "none" });
   * ```
   */
  async query(
    sql: string,
    params: readonly SqlValue[] = [],
    options: EmbeddedReadOptions = {},
  ): Promise<QueryResult> {
    await readBarrier(this.#parts, options.consistency ?? "linearizable", options);
    return this.#parts.database.query(sql, params);
  }
}

/** A KV transaction: compares decide whether `success` or `failure` runs. */
export interface KvTxnRequest {
  readonly compare?: readonly KvCompare[];
  readonly success?: readonly KvTxnOperation[];
  readonly failure?: readonly KvTxnOperation[];
}

const encoder = new TextEncoder();
const bytesOf = (value: Uint8Array | string): Uint8Array =>
  typeof value === "string" ? encoder.encode(value) : value;

/** The replicated key-value store (watches: see kv-watch-iterator.ts). */
export class EmbeddedKv {
  readonly #parts: EmbeddedDatabaseParts;

  constructor(parts: EmbeddedDatabaseParts) {
    this.#parts = parts;
  }

  /** The key's value and revisions, or null. @example `await kv.get("a", { consistency: "none" })` */
  async get(key: string, options: EmbeddedReadOptions = {}): Promise<KeyValue | null> {
    await readBarrier(this.#parts, options.consistency ?? "linearizable", options);
    return this.#parts.database.kvGet(key);
  }

  /** Keys under `prefix` in byte order (at most `limit`, ≤ 10,000). @example `await kv.range("jobs/")` */
  async range(
    prefix: string,
    options: EmbeddedReadOptions & { readonly limit?: number } = {},
  ): Promise<readonly KeyValue[]> {
    await readBarrier(this.#parts, options.consistency ?? "linearizable", options);
    const limitMax = this.#parts.database.limits.kvRangeLimitMax;
    return this.#parts.database.kvRange(prefix, Math.min(options.limit ?? limitMax, limitMax));
  }

  /**
   * Puts a value (a string is stored as UTF-8). With `prevRevision` it is a compare-and-set on
   * the key's mod revision (0: the key must not exist): `succeeded` is false when it differed.
   *
   * @example
   * ```ts
   * const { revision } = await kv.put("leader-note", "n1");
   * const { succeeded } = await kv.put("leader-note", "n2", { prevRevision: revision });
   * ```
   */
  async put(
    key: string,
    value: Uint8Array | string,
    options: OperationOptions & { readonly lease?: number; readonly prevRevision?: number } = {},
  ): Promise<WriteOutcome & { readonly revision: number; readonly succeeded: boolean }> {
    const lease = options.lease === undefined || options.lease === 0 ? {} : { lease: options.lease };
    const bytes = bytesOf(value);
    const command: DatabaseCommand =
      options.prevRevision === undefined
        ? { kind: "kv", op: "put", key, value: bytes, ...lease }
        : {
            kind: "kv",
            op: "cas",
            key,
            expect: { modRevision: options.prevRevision },
            value: bytes,
            ...lease,
          };
    const { index, term, result } = await propose(this.#parts, command, options);
    return { index, term, revision: result.revision as number, succeeded: result.succeeded !== false };
  }

  /** Deletes a key. @example `const { deleted } = await kv.delete("a")` */
  async delete(
    key: string,
    options: OperationOptions = {},
  ): Promise<WriteOutcome & { readonly revision: number; readonly deleted: number }> {
    const { index, term, result } = await propose(this.#parts, { kind: "kv", op: "delete", key }, options);
    return { index, term, revision: result.revision as number, deleted: (result.deleted as number) ?? 0 };
  }

  /**
   * An atomic transaction (etcd style).
   *
   * @example
   * ```ts
   * await kv.txn({ compare: [{ key: "a", target: "version", operator: "=", value: 0 }],
   *   success: [{ op: "put", key: "a", value: new TextEncoder().encode("first") }] });
   * ```
   */
  async txn(
    request: KvTxnRequest,
    options: OperationOptions = {},
  ): Promise<
    WriteOutcome & { readonly revision: number; readonly succeeded: boolean; readonly results: unknown }
  > {
    const { index, term, result } = await propose(
      this.#parts,
      {
        kind: "kv",
        op: "txn",
        compare: request.compare ?? [],
        success: request.success ?? [],
        failure: request.failure ?? [],
      },
      options,
    );
    return {
      index,
      term,
      revision: result.revision as number,
      succeeded: result.succeeded === true,
      results: result.results,
    };
  }

  /** Grants a lease (the caller keeps it alive). @example `const { leaseId } = await kv.grantLease(10_000)` */
  async grantLease(
    ttlMs: number,
    options: OperationOptions = {},
  ): Promise<{ readonly leaseId: number; readonly expiresAtMs: number }> {
    const nowMs = this.#parts.leaseClockMs();
    const { result } = await propose(this.#parts, { kind: "kv", op: "lease-grant", ttlMs, nowMs }, options);
    return { leaseId: result.leaseId as number, expiresAtMs: result.expiresAtMs as number };
  }

  /** Extends a lease by its TTL; throws `CONCLAVE_LEASE_NOT_FOUND`/`_EXPIRED` once it is gone. */
  async keepAliveLease(
    leaseId: number,
    options: OperationOptions = {},
  ): Promise<{ readonly expiresAtMs: number }> {
    const nowMs = this.#parts.leaseClockMs();
    const { result } = await propose(
      this.#parts,
      { kind: "kv", op: "lease-keepalive", leaseId, nowMs },
      options,
    );
    return { expiresAtMs: result.expiresAtMs as number };
  }

  /** Revokes a lease: its keys are deleted. */
  async revokeLease(
    leaseId: number,
    options: OperationOptions = {},
  ): Promise<{ readonly deletedKeys: number }> {
    const { result } = await propose(this.#parts, { kind: "kv", op: "lease-revoke", leaseId }, options);
    return { deletedKeys: (result.deletedKeys as number) ?? 0 };
  }
}
