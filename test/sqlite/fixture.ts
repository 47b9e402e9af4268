/** Helpers shared by the SQLite state machine tests: temp dirs, command builders, file hashes. */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  type DatabaseCommand,
  encodeCommand,
  type KvOperation,
  type SqlValue,
} from "../../src/adapters/sqlite/commands.ts";
import { prepareSql } from "../../src/adapters/sqlite/sql-rewrite.ts";
import {
  SqliteStateMachine,
  type SqliteStateMachineOptions,
} from "../../src/adapters/sqlite/sqlite-state-machine.ts";

export const fixedClock = {
  now: new Date("2025-05-01T10:20:30.456Z"),
  random: (byteCount: number) => new Uint8Array(byteCount).fill(7),
};

/** A temporary directory removed by the returned cleanup. */
export function temporaryDirectory(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), "conclave-sqlite-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A prepared, encoded SQL command. */
export function sqlEntry(...statements: (string | { sql: string; params: SqlValue[] })[]): Uint8Array {
  const list = statements.map((statement) =>
    typeof statement === "string" ? { sql: statement } : statement,
  );
  return encodeCommand({ kind: "sql", statements: prepareSql(list, fixedClock) });
}

/** An encoded KV command. */
export function kvEntry(operation: KvOperation): Uint8Array {
  return encodeCommand({ kind: "kv", ...operation } as DatabaseCommand);
}

/** Opens a state machine in a fresh directory (or `dataDir`), with `options` on top of the tests' defaults. */
export function openMachine(
  dataDir?: string,
  options: Partial<SqliteStateMachineOptions> = {},
): {
  machine: SqliteStateMachine;
  dataDir: string;
  remove: () => void;
} {
  const directory = dataDir === undefined ? temporaryDirectory() : { path: dataDir, remove: () => {} };
  // Every batch commits at its end unless a test asks otherwise: most tests read the file
  // through another connection (hashes, copies). Deferred commits have their own tests.
  const machine = new SqliteStateMachine({
    kvHistoryRevisionsMax: 50,
    applyCommitIntervalMs: 0,
    ...options,
    dataDir: directory.path,
  });
  return {
    machine,
    dataDir: directory.path,
    remove: () => {
      machine.close();
      directory.remove();
    },
  };
}

/** sha256 of a `VACUUM INTO` copy of the machine's database (its logical content, canonical layout). */
export function databaseHash(dataDir: string): string {
  const copy = join(dataDir, `hash-${Math.random().toString(16).slice(2)}.db`);
  const db = new DatabaseSync(join(dataDir, "db.sqlite"), { readOnly: true });
  try {
    db.exec(`VACUUM INTO '${copy}'`);
  } finally {
    db.close();
  }
  const hash = createHash("sha256").update(readFileSync(copy)).digest("hex");
  rmSync(copy);
  return hash;
}

/** Collects a snapshot's chunks into one buffer (small databases only). */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Yields a buffer as an async stream of chunks. */
export async function* chunksOf(buffer: Uint8Array, chunkBytes = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < buffer.length; at += chunkBytes) yield buffer.subarray(at, at + chunkBytes);
}

/**
 * Applies `log` (entry i at index i + 1) in batches of `batchSize` entries (beginBatch/endBatch
 * around each), returning every entry's result.
 */
export function applyInBatches(
  machine: SqliteStateMachine,
  log: readonly Uint8Array[],
  batchSize: number,
): unknown[] {
  return log.map((data, position) => {
    if (position % batchSize === 0) machine.beginBatch();
    const result = machine.apply(data, position + 1);
    if (position % batchSize === batchSize - 1 || position === log.length - 1) machine.endBatch();
    return result;
  });
}
