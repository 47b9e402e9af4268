/**
 * Conversions between node:sqlite and Conclave's results: integers come back as bigint (so that
 * large ones are exact) and become numbers when safe; SQLite errors get stable code names.
 */
import type { SqlValue } from "./commands.ts";

/** A value read from SQLite, with safe integers as numbers. */
export function toSqlValue(value: unknown): SqlValue {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  }
  if (
    value === null ||
    typeof value === "number" ||
    typeof value === "string" ||
    value instanceof Uint8Array
  ) {
    return value;
  }
  return String(value);
}

const primaryCodeNames: Readonly<Record<number, string>> = {
  1: "SQLITE_ERROR",
  2: "SQLITE_INTERNAL",
  3: "SQLITE_PERM",
  4: "SQLITE_ABORT",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  7: "SQLITE_NOMEM",
  8: "SQLITE_READONLY",
  9: "SQLITE_INTERRUPT",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  15: "SQLITE_PROTOCOL",
  17: "SQLITE_SCHEMA",
  18: "SQLITE_TOOBIG",
  19: "SQLITE_CONSTRAINT",
  20: "SQLITE_MISMATCH",
  21: "SQLITE_MISUSE",
  23: "SQLITE_AUTH",
  25: "SQLITE_RANGE",
  26: "SQLITE_NOTADB",
};

/**
 * Failures of this member's machine rather than of the statement: the same entry succeeds on a
 * healthy member, so answering with an error result would make members diverge. The state
 * machine stops instead (fail-stop) and the entry is applied again after a restart.
 */
const environmentalCodes = new Set([3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 26]);

function primaryCode(error: unknown): number | null {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" ? code & 0xff : null;
}

/** A stable name for an error: `SQLITE_CONSTRAINT`, `SQLITE_ERROR`, or node's own code. */
export function sqliteErrorCode(error: unknown): string {
  const code = primaryCode(error);
  if (code !== null) return primaryCodeNames[code] ?? `SQLITE_${code}`;
  const nodeCode = (error as { code?: unknown } | null)?.code;
  return typeof nodeCode === "string" ? nodeCode : "CONCLAVE_SQL_FAILED";
}

/** True for disk, memory, lock and corruption failures (see `environmentalCodes`). */
export function isEnvironmentalFailure(error: unknown): boolean {
  const code = primaryCode(error);
  return code !== null && environmentalCodes.has(code);
}
