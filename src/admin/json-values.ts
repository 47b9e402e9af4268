/**
 * SQL values and KV bytes in JSON. JSON has no bytes and no exact 64-bit integers, so:
 * - a BLOB is `{ "blob": "<base64>" }`, an integer beyond 2^53 is `{ "int": "<decimal>" }`, in
 *   parameters and in rows alike; `true`/`false` bind as 1/0;
 * - KV keys are UTF-8 strings and KV values are base64 strings (`value`) in JSON bodies.
 */
import type { KeyValue, KvChange, SqlValue } from "../ports/database.ts";
import { HttpFailure } from "./http-failure.ts";

/** A JSON parameter → a SQL value; 400 naming the parameter when it has no SQL meaning. */
export function sqlValueFromJson(value: unknown, where: string): SqlValue {
  if (value === null || typeof value === "number" || typeof value === "string") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "object" && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    if (typeof record.blob === "string" && Object.keys(record).length === 1)
      return bytesFromBase64(record.blob, where);
    if (
      typeof record.int === "string" &&
      /^-?\d{1,20}$/.test(record.int) &&
      Object.keys(record).length === 1
    ) {
      return BigInt(record.int);
    }
  }
  throw new HttpFailure(
    400,
    "CONCLAVE_BAD_REQUEST",
    `${where} must be null, a number, a string, a boolean, {"blob": "<base64>"} or {"int": "<decimal>"}`,
  );
}

/** A SQL value → JSON (see the module comment). */
export function sqlValueToJson(value: SqlValue): unknown {
  if (typeof value === "bigint") return { int: value.toString() };
  if (value instanceof Uint8Array) return { blob: base64(value) };
  return value;
}

/** Rows with every value converted to JSON. */
export function rowsToJson(rows: readonly Readonly<Record<string, SqlValue>>[]): Record<string, unknown>[] {
  return rows.map((row) => {
    const converted: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(row)) converted[column] = sqlValueToJson(value);
    return converted;
  });
}

export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Strict base64 → bytes; 400 naming `where` when it is not base64. */
export function bytesFromBase64(text: string, where: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new HttpFailure(400, "CONCLAVE_BAD_REQUEST", `${where} must be base64`);
  }
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** A stored key in JSON: the value in base64. */
export function keyValueToJson(kv: KeyValue): Record<string, unknown> {
  return {
    key: kv.key,
    value: base64(kv.value),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

/** A change in JSON (one line of a watch stream). */
export function changeToJson(change: KvChange): Record<string, unknown> {
  return {
    revision: change.revision,
    key: change.key,
    type: change.type,
    value: change.value === null ? null : base64(change.value),
  };
}

/** Converts what a txn result holds (`kv` of get operations) to JSON. */
export function txnResultsToJson(results: unknown): unknown {
  if (!Array.isArray(results)) return [];
  return results.map((result: Record<string, unknown>) =>
    result.op === "get"
      ? { op: "get", kv: result.kv === null ? null : keyValueToJson(result.kv as KeyValue) }
      : result,
  );
}
