/**
 * Values on the wire (see src/admin/json-values.ts): a blob is `{ blob: base64 }`, an integer
 * beyond 2^53 `{ int: "<decimal>" }`; KV values are base64 in JSON.
 */

/** A SQL value: NULL, number, bigint (beyond 2^53), text or blob. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** A stored key, as the client returns it. */
export interface KeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly lease: number;
  /** The value decoded as UTF-8. */
  text(): string;
}

export function toJsonValue(value: SqlValue): unknown {
  if (typeof value === "bigint") return { int: value.toString() };
  if (value instanceof Uint8Array) return { blob: Buffer.from(value).toString("base64") };
  return value;
}

export function fromJsonValue(value: unknown): SqlValue {
  if (value !== null && typeof value === "object") {
    const record = value as { blob?: unknown; int?: unknown };
    if (typeof record.blob === "string") return new Uint8Array(Buffer.from(record.blob, "base64"));
    if (typeof record.int === "string") return BigInt(record.int);
  }
  return value as SqlValue;
}

export function keyValueFromJson(body: Record<string, unknown>): KeyValue {
  const value = new Uint8Array(Buffer.from(String(body.value), "base64"));
  return {
    key: String(body.key),
    value,
    createRevision: Number(body.createRevision),
    modRevision: Number(body.modRevision),
    version: Number(body.version),
    lease: Number(body.lease),
    text: () => new TextDecoder().decode(value),
  };
}
