/**
 * Idempotency keys in the state machine: a keyed write applies once and its retries get the
 * recorded result; the same key with another request is refused; failed writes are not
 * recorded; keys are forgotten after the window, by entry index (the same on every replica).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeCommand, type KvOperation } from "../../src/adapters/sqlite/commands.ts";
import { idempotencyWindowEntries } from "../../src/adapters/sqlite/idempotency.ts";
import { prepareSql } from "../../src/adapters/sqlite/sql-rewrite.ts";
import { databaseHash, fixedClock, openMachine, sqlEntry } from "./fixture.ts";

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

  it("forgets keys after the window, by entry index, identically on every replica", () => {
    const replicas = [openMachine(), openMachine()];
    try {
      for (const { machine } of replicas) {
        machine.apply(keyedKv("old", hashA, { op: "put", key: "a", value: new Uint8Array([1]) }), 1);
        const within = idempotencyWindowEntries; // index 1 + window − 1: still remembered
        assert.equal(
          "replayed" in
            machine.apply(keyedKv("old", hashA, { op: "put", key: "a", value: new Uint8Array([1]) }), within),
          true,
        );
        // Pruning runs at multiples of 1,024 at least a window past the key's entry.
        const pruneAt = Math.ceil((1 + idempotencyWindowEntries) / 1024) * 1024;
        machine.apply(keyedKv("other", hashB, { op: "delete", key: "zz" }), pruneAt);
        const after = machine.apply(
          keyedKv("old", hashA, { op: "put", key: "a", value: new Uint8Array([1]) }),
          pruneAt + 1,
        );
        assert.equal("replayed" in after, false, "after the window a retry applies again");
        machine.close();
      }
      assert.equal(
        databaseHash(replicas[0]?.dataDir as string),
        databaseHash(replicas[1]?.dataDir as string),
      );
    } finally {
      for (const replica of replicas) replica.remove();
    }
  });
});
