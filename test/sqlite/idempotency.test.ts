/**
 * Idempotency keys in the state machine: a keyed write applies once and its retries get the
 * recorded result; the same key with another request is refused; failed writes are not
 * recorded; keys are forgotten after exactly the window, by entry index (the same on every
 * replica, whatever the batching); too-large results are not kept; the table travels in
 * snapshots.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import fc from "fast-check";
import { encodeCommand, type KvOperation } from "../../src/adapters/sqlite/commands.ts";
import {
  idempotencyResultBytesMax,
  idempotencyWindowEntriesDefault,
} from "../../src/adapters/sqlite/idempotency.ts";
import { prepareSql } from "../../src/adapters/sqlite/sql-rewrite.ts";
import {
  applyInBatches,
  chunksOf,
  collect,
  databaseHash,
  fixedClock,
  kvEntry,
  openMachine,
  sqlEntry,
} from "./fixture.ts";

const hashA = "a".repeat(64);
const hashB = "b".repeat(64);

function keyedSql(key: string, requestSha256: string, sql: string): Uint8Array {
  return encodeCommand({
    kind: "keyed",
    key,
    requestSha256,
    command: { kind: "sql", statements: prepareSql([{ sql }], fixedClock) },
  });
}

function keyedKv(key: string, requestSha256: string, operation: KvOperation): Uint8Array {
  return encodeCommand({ kind: "keyed", key, requestSha256, command: { kind: "kv", ...operation } });
}

/** A state machine remembering keys for `windowEntries` entries. */
function openWindowed(windowEntries: number): ReturnType<typeof openMachine> {
  return openMachine(undefined, { idempotencyWindowEntries: windowEntries });
}

const putA = (key: string) => keyedKv(key, hashA, { op: "put", key: "a", value: new Uint8Array([1]) });
const replayed = (result: object) => "replayed" in result;

function rowsOf(dataDir: string, sql: string): Record<string, unknown>[] {
  const db = new DatabaseSync(join(dataDir, "db.sqlite"), { readOnly: true });
  try {
    return db.prepare(sql).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

describe("idempotency keys", () => {
  it("applies a keyed write once; a retry gets the same result, marked replayed", () => {
    const { machine, remove } = openMachine();
    try {
      machine.apply(sqlEntry("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"), 1);
      const first = machine.apply(keyedSql("k1", hashA, "INSERT INTO t (v) VALUES ('x')"), 2);
      const retry = machine.apply(keyedSql("k1", hashA, "INSERT INTO t (v) VALUES ('x')"), 3);
      assert.deepEqual(first, { ok: true, results: [{ rowsChanged: 1, lastInsertRowid: 1 }] });
      assert.deepEqual(retry, { ...first, replayed: true });
      assert.deepEqual(machine.query("SELECT count(*) AS n FROM t").rows, [{ n: 1 }]);
      const put = machine.apply(keyedKv("k2", hashB, { op: "put", key: "a", value: new Uint8Array([1]) }), 4);
      const putAgain = machine.apply(
        keyedKv("k2", hashB, { op: "put", key: "a", value: new Uint8Array([1]) }),
        5,
      );
      assert.equal(put.ok, true);
      assert.deepEqual(putAgain, { ...put, replayed: true });
      assert.equal(machine.kv.get("a")?.version, 1, "the put was applied once");
    } finally {
      remove();
    }
  });

  it("refuses the same key with another request, and does not record failed writes", () => {
    const { machine, remove } = openMachine();
    try {
      machine.apply(sqlEntry("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"), 1);
      machine.apply(keyedSql("k1", hashA, "INSERT INTO t (v) VALUES ('x')"), 2);
      const reused = machine.apply(keyedSql("k1", hashB, "INSERT INTO t (v) VALUES ('y')"), 3);
      assert.equal(reused.ok, false);
      assert.equal(!reused.ok && reused.error.code, "CONCLAVE_IDEMPOTENCY_KEY_REUSED");
      const failed = machine.apply(keyedSql("k2", hashA, "INSERT INTO t (v) VALUES (NULL)"), 4);
      assert.equal(failed.ok, false);
      // The failed write applied nothing: trying it again (now valid) applies it.
      const again = machine.apply(keyedSql("k2", hashA, "INSERT INTO t (v) VALUES ('z')"), 5);
      assert.equal(again.ok, true);
      assert.equal("replayed" in again, false);
      assert.deepEqual(machine.query("SELECT v FROM t ORDER BY id").rows, [{ v: "x" }, { v: "z" }]);
    } finally {
      remove();
    }
  });

  it("remembers a key for exactly the window, counted in entries, identically on every replica", () => {
    const window = 10;
    const replicas = [openWindowed(window), openWindowed(window)];
    try {
      for (const { machine } of replicas) {
        machine.apply(putA("old"), 1);
        // Entries 2..10 are other work, one of them a failing entry (it must still prune).
        for (let index = 2; index <= window; index++) {
          machine.apply(index === 5 ? sqlEntry("SELEC broken") : kvEntry({ op: "delete", key: "zz" }), index);
        }
        assert.equal(replayed(machine.apply(putA("old"), 1 + window)), true, "within the window");
        assert.equal(replayed(machine.apply(putA("old"), 2 + window)), false, "past it: applied again");
        assert.equal(machine.kv.get("a")?.version, 2);
        machine.close();
      }
      assert.equal(
        databaseHash(replicas[0]?.dataDir as string),
        databaseHash(replicas[1]?.dataDir as string),
      );
    } finally {
      for (const replica of replicas) replica.remove();
    }
    assert.equal(idempotencyWindowEntriesDefault, 100_000, "the documented default window");
  });

  it("keeps the table bounded: entries past the window leave no rows behind, even failed ones", () => {
    const window = 4;
    const { machine, dataDir, remove } = openWindowed(window);
    try {
      // The last entry (42) fails: its pruning must not roll back with it.
      for (let index = 1; index <= 42; index++) {
        // Every third entry fails (a key reused for another request): it records nothing but prunes.
        const data =
          index % 3 === 0
            ? keyedKv(`k${index - 1}`, hashB, { op: "delete", key: "a" })
            : keyedKv(`k${index}`, hashA, { op: "put", key: `a${index}`, value: new Uint8Array([1]) });
        machine.apply(data, index);
      }
      machine.close();
      const rows = rowsOf(dataDir, "SELECT entry_index FROM _conclave_idempotency ORDER BY entry_index");
      assert.deepEqual(
        rows.map((row) => row.entry_index),
        [40, 41],
      );
    } finally {
      remove();
    }
  });

  it("does not keep a result larger than the limit: its replay says the write was applied", () => {
    const { machine, remove } = openMachine();
    try {
      const big = new Uint8Array(idempotencyResultBytesMax).fill(1);
      machine.apply(kvEntry({ op: "put", key: "big", value: big }), 1);
      const read: KvOperation = {
        op: "txn",
        compare: [],
        success: [{ op: "get", key: "big" }],
        failure: [],
      };
      const first = machine.apply(keyedKv("read-big", hashA, read), 2);
      assert.equal(first.ok, true, "the first answer carries the whole result");
      const retry = machine.apply(keyedKv("read-big", hashA, read), 3);
      assert.equal(retry.ok, false);
      assert.equal(!retry.ok && retry.error.code, "CONCLAVE_IDEMPOTENCY_RESULT_NOT_KEPT");
      assert.match(!retry.ok ? retry.error.message : "", /was applied \(entry 2\)/);
      assert.equal(replayed(retry), true);
    } finally {
      remove();
    }
  });

  it("a member restored from a snapshot replays the keys recorded before it", async () => {
    const source = openMachine();
    const target = openMachine();
    try {
      const first = source.machine.apply(putA("before-snapshot"), 1);
      const bytes = await collect(source.machine.snapshot().chunks);
      await target.machine.restore(chunksOf(bytes), bytes.length);
      assert.deepEqual(target.machine.apply(putA("before-snapshot"), 2), { ...first, replayed: true });
    } finally {
      source.remove();
      target.remove();
    }
  });

  it("a restored member forgets the snapshot's keys once they leave the window", async () => {
    const window = 3;
    const source = openWindowed(window);
    const target = openWindowed(window);
    try {
      source.machine.apply(putA("in-snapshot"), 1);
      const bytes = await collect(source.machine.snapshot().chunks);
      // The target saw no keyed write before the restore (its table was empty).
      target.machine.apply(kvEntry({ op: "delete", key: "zz" }), 1);
      await target.machine.restore(chunksOf(bytes), bytes.length);
      for (let index = 2; index <= 1 + window; index++)
        target.machine.apply(kvEntry({ op: "delete", key: "zz" }), index);
      assert.equal(replayed(target.machine.apply(putA("in-snapshot"), 2 + window)), false, "past the window");
    } finally {
      source.remove();
      target.remove();
    }
  });

  it("replicas applying a random log of keyed writes (retries, reuses, failures; any batching) agree", () => {
    const keyedArbitrary = fc
      .record({
        key: fc.constantFrom("k1", "k2", "k3", "k4"),
        request: fc.constantFrom(hashA, hashB),
        operation: fc.oneof(
          fc.integer({ min: 0, max: 5 }).map((id) => ({
            kind: "sql" as const,
            statements: prepareSql(
              [{ sql: "INSERT INTO t (id, v) VALUES (?, random())", params: [id] }],
              fixedClock,
            ),
          })),
          fc.record({
            kind: fc.constant("kv" as const),
            op: fc.constant("put" as const),
            key: fc.constantFrom("a", "b"),
            value: fc.uint8Array({ maxLength: 4 }),
          }),
        ),
      })
      .map(({ key, request, operation }) =>
        encodeCommand({ kind: "keyed", key, requestSha256: request, command: operation }),
      );
    const entryArbitrary = fc.oneof(
      keyedArbitrary,
      fc.constant(kvEntry({ op: "delete", key: "a" })),
      fc.constant(sqlEntry("SELEC broken")),
    );
    fc.assert(
      fc.property(fc.array(entryArbitrary, { minLength: 1, maxLength: 30 }), (entries) => {
        const replicas = [openWindowed(5), openWindowed(5), openWindowed(5)];
        try {
          const log = [sqlEntry("CREATE TABLE t (id INTEGER PRIMARY KEY, v)"), ...entries];
          const batchSizes = [1, 4, log.length];
          const results = replicas.map(({ machine }, replica) =>
            applyInBatches(machine, log, batchSizes[replica] as number),
          );
          for (const replicaResults of results.slice(1)) assert.deepEqual(replicaResults, results[0]);
          for (const { machine } of replicas) machine.close();
          assert.equal(new Set(replicas.map(({ dataDir }) => databaseHash(dataDir))).size, 1);
        } finally {
          for (const replica of replicas) replica.remove();
        }
      }),
      { numRuns: 30, seed: 20251122 },
    );
  });
});
