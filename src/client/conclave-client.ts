/**
 * The TypeScript client of a Conclave node's HTTP API: SQL, KV, leases and watches, with primary
 * discovery and safe retries (see endpoint-pool.ts). Values in and out: strings (UTF-8) or
 * bytes; SQL blobs are `Uint8Array`, integers beyond 2^53 `bigint`.
 *
 * Every write carries an idempotency key (see {@link WriteOptions}): a write whose outcome is
 * unknown (timeout, 504, dropped connection, failover) is retried with the same key, on the new
 * primary, and the cluster applies it at most once. When the retries run out the error is
 * `CONCLAVE_OUTCOME_UNKNOWN`, naming the key: retrying later with that key is still safe.
 *
 * @example
 * ```ts
 * const client = new ConclaveClient({ endpoints: ["http://10.0.0.5:4380", "http://10.0.0.6:4380"] });
 * await client.sql.execute([{ sql: "INSERT INTO t (name) VALUES (?)", params: ["a"] }]);
 * const { rows } = await client.sql.query("SELECT * FROM t", [], { consistency: "strong" });
 * await client.kv.put("config/a", "on");
 * (await client.kv.get("config/a"))?.text(); // "on"
 * for await (const change of client.kv.watch("config/", { signal })) console.log(change);
 * ```
 */

import { randomUUID } from "node:crypto";
import { ConclaveError } from "../lib/errors.ts";
import { EndpointPool } from "./endpoint-pool.ts";
import { type WatchEvent, watchChanges } from "./watch-stream.ts";
import { fromJsonValue, type KeyValue, keyValueFromJson, type SqlValue, toJsonValue } from "./wire-values.ts";

export type { WatchEvent } from "./watch-stream.ts";
export type { KeyValue, SqlValue } from "./wire-values.ts";

/** Options of {@link ConclaveClient}. */
export interface ClientOptions {
  /** Base URLs of the members' HTTP APIs, e.g. `http://127.0.0.1:4380`. */
  readonly endpoints: readonly string[];
  /** Per-request timeout (default 10,000 ms). */
  readonly timeoutMs?: number;
  /** The cluster's API token (every `/v1` call needs it; it is in `<data_dir>/admin-token` on any member). */
  readonly token?: string;
}

/**
 * Options of a write. Every write carries an idempotency key (a fresh UUID unless given), so a
 * write whose outcome was lost (timeout, dropped connection, failover) is retried with the same
 * key and applied at most once. Give your own key to retry safely across client restarts; the
 * cluster remembers a key for 100,000 log entries (a retry later than that may apply twice).
 */
export interface WriteOptions {
  /**
   * 1 to 128 visible ASCII characters (`Idempotency-Key`). Reusing a key for a different
   * request is refused (`CONCLAVE_IDEMPOTENCY_KEY_REUSED`); a repeat of the same request gets
   * the first answer, not a second write.
   */
  readonly idempotencyKey?: string;
}

function keyed(options: WriteOptions): { idempotent: true; headers: Record<string, string> } {
  return { idempotent: true, headers: { "idempotency-key": options.idempotencyKey ?? randomUUID() } };
}

/** Read consistency (see src/admin/read-consistency.ts). */
export type Consistency = "none" | "weak" | "linearizable" | "strong";

export interface ReadOptions {
  readonly consistency?: Consistency;
  /** Only with `none`: refuse (CONCLAVE_STALE) when the member was out of contact longer. */
  readonly maxStalenessMs?: number;
}

/** One SQL statement. */
export interface Statement {
  readonly sql: string;
  readonly params?: readonly SqlValue[];
}

type Value = string | Uint8Array;

const toBytes = (value: Value): Uint8Array =>
  typeof value === "string" ? new TextEncoder().encode(value) : value;
const base64 = (value: Value): string => Buffer.from(toBytes(value)).toString("base64");
const keyPath = (key: string): string => `/v1/kv/${encodeURIComponent(key)}`;

export class ConclaveClient {
  readonly #pool: EndpointPool;

  constructor(options: ClientOptions) {
    this.#pool = new EndpointPool({
      endpoints: options.endpoints,
      timeoutMs: options.timeoutMs ?? 10_000,
      token: options.token,
    });
  }

  async #json(request: Parameters<EndpointPool["send"]>[0]): Promise<Record<string, unknown>> {
    const response = await this.#pool.send(request);
    return (await response.json()) as Record<string, unknown>;
  }

  #post(
    path: string,
    body: unknown,
    write: boolean,
    options: WriteOptions = {},
  ): Promise<Record<string, unknown>> {
    return this.#json({
      method: "POST",
      path,
      body: JSON.stringify(body, (_key, value: unknown) =>
        typeof value === "bigint" ? { int: value.toString() } : value,
      ),
      contentType: "application/json",
      primary: true,
      idempotent: !write,
      ...(write ? keyed(options) : {}),
    });
  }

  /** SQL: `execute` (one atomic transaction through the log) and `query` (rows). */
  readonly sql = {
    /** Runs the statements as one transaction; a failed statement throws (code, `details.statementIndex`). */
    execute: async (
      statements: readonly Statement[],
      options: WriteOptions = {},
    ): Promise<{ rowsChanged: number; lastInsertRowid: number | bigint }[]> => {
      const body = await this.#post(
        "/v1/sql/execute",
        { statements: statements.map((s) => ({ sql: s.sql, params: (s.params ?? []).map(toJsonValue) })) },
        true,
        options,
      );
      return (body.results as { rowsChanged: number; lastInsertRowid: unknown }[]).map((result) => ({
        rowsChanged: result.rowsChanged,
        lastInsertRowid: fromJsonValue(result.lastInsertRowid) as number | bigint,
      }));
    },
    /** Rows of one read-only statement at the asked consistency (default linearizable). */
    query: async (
      sql: string,
      params: readonly SqlValue[] = [],
      options: ReadOptions = {},
    ): Promise<{ rows: Record<string, SqlValue>[]; truncated: boolean }> => {
      const body = await this.#post(
        "/v1/sql/query",
        { sql, params: params.map(toJsonValue), ...options },
        false,
      );
      const rows = (body.rows as Record<string, unknown>[]).map((row) =>
        Object.fromEntries(Object.entries(row).map(([column, value]) => [column, fromJsonValue(value)])),
      );
      return { rows, truncated: body.truncated === true };
    },
  };

  /** The KV store. */
  readonly kv = {
    /** The key's value and revisions, or null when absent. */
    get: async (key: string, options: ReadOptions = {}): Promise<KeyValue | null> => {
      const query = new URLSearchParams({ format: "json" });
      if (options.consistency !== undefined) query.set("consistency", options.consistency);
      if (options.maxStalenessMs !== undefined) query.set("maxStalenessMs", String(options.maxStalenessMs));
      try {
        const body = await this.#json({
          method: "GET",
          path: `${keyPath(key)}?${query}`,
          primary: options.consistency !== "none",
          idempotent: true,
        });
        return keyValueFromJson(body);
      } catch (error) {
        if (error instanceof ConclaveError && error.code === "CONCLAVE_KEY_NOT_FOUND") return null;
        throw error;
      }
    },
    /** Writes a value; `prevRevision` makes it a compare-and-set (CONCLAVE_REVISION_MISMATCH). */
    put: async (
      key: string,
      value: Value,
      options: { lease?: number; prevRevision?: number } & WriteOptions = {},
    ): Promise<{ revision: number }> => {
      const query = new URLSearchParams();
      if (options.lease !== undefined) query.set("lease", String(options.lease));
      if (options.prevRevision !== undefined) query.set("prevRevision", String(options.prevRevision));
      const suffix = query.size > 0 ? `?${query}` : "";
      const body = await this.#json({
        method: "PUT",
        path: `${keyPath(key)}${suffix}`,
        body: toBytes(value),
        primary: true,
        ...keyed(options),
      });
      return { revision: body.revision as number };
    },
    delete: async (
      key: string,
      options: WriteOptions = {},
    ): Promise<{ revision: number; deleted: number }> => {
      const body = await this.#json({
        method: "DELETE",
        path: keyPath(key),
        primary: true,
        ...keyed(options),
      });
      return { revision: body.revision as number, deleted: body.deleted as number };
    },
    /** Keys under `prefix` in byte order, at most `limit`. */
    range: async (
      prefix: string,
      options: ReadOptions & { limit?: number } = {},
    ): Promise<{ kvs: KeyValue[]; more: boolean; revision: number }> => {
      const query = new URLSearchParams({ prefix });
      if (options.limit !== undefined) query.set("limit", String(options.limit));
      if (options.consistency !== undefined) query.set("consistency", options.consistency);
      const body = await this.#json({
        method: "GET",
        path: `/v1/kv?${query}`,
        primary: options.consistency !== "none",
        idempotent: true,
      });
      return {
        kvs: (body.kvs as Record<string, unknown>[]).map(keyValueFromJson),
        more: body.more === true,
        revision: body.revision as number,
      };
    },
    /** An etcd-like transaction; values as strings or bytes. */
    txn: async (
      txn: {
        compare?: readonly {
          key: string;
          target: "value" | "mod_revision" | "create_revision" | "version";
          operator: "=" | "!=" | "<" | ">";
          value: Value | number | null;
        }[];
        success?: readonly { op: "put" | "delete" | "get"; key: string; value?: Value; lease?: number }[];
        failure?: readonly { op: "put" | "delete" | "get"; key: string; value?: Value; lease?: number }[];
      },
      options: WriteOptions = {},
    ): Promise<{ succeeded: boolean; revision: number; results: unknown[] }> => {
      const operation = (op: { op: string; key: string; value?: Value; lease?: number }) =>
        op.op === "put" ? { ...op, value: base64(op.value ?? "") } : { op: op.op, key: op.key };
      const body = await this.#post(
        "/v1/kv/txn",
        {
          compare: (txn.compare ?? []).map((c) => ({
            ...c,
            value: typeof c.value === "number" || c.value === null ? c.value : base64(c.value),
          })),
          success: (txn.success ?? []).map(operation),
          failure: (txn.failure ?? []).map(operation),
        },
        true,
        options,
      );
      return {
        succeeded: body.succeeded === true,
        revision: body.revision as number,
        results: body.results as unknown[],
      };
    },
    /** Changes under `prefix` from `fromRevision` (default: from now), until `signal` aborts. */
    watch: (
      prefix: string,
      options: { fromRevision?: number; signal?: AbortSignal } = {},
    ): AsyncIterable<WatchEvent> => watchChanges(this.#pool, prefix, options),
  };

  /** Leases: keys put with a lease are deleted when it expires or is revoked. */
  readonly leases = {
    grant: async (
      ttlMs: number,
      options: WriteOptions = {},
    ): Promise<{ leaseId: number; expiresAtMs: number }> => {
      const body = await this.#post("/v1/leases", { ttlMs }, true, options);
      return { leaseId: body.leaseId as number, expiresAtMs: body.expiresAtMs as number };
    },
    keepAlive: async (leaseId: number, options: WriteOptions = {}): Promise<{ expiresAtMs: number }> => {
      const body = await this.#json({
        method: "POST",
        path: `/v1/leases/${leaseId}/keepalive`,
        primary: true,
        ...keyed(options),
      });
      return { expiresAtMs: body.expiresAtMs as number };
    },
    revoke: async (leaseId: number, options: WriteOptions = {}): Promise<{ deletedKeys: number }> => {
      const body = await this.#json({
        method: "DELETE",
        path: `/v1/leases/${leaseId}`,
        primary: true,
        ...keyed(options),
      });
      return { deletedKeys: body.deletedKeys as number };
    },
  };
}
