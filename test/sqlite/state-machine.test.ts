import assert from "node:assert/strict";
import { cpSync, rmSync } from "node:fs";
import { describe, it } from "node:test";
import { Packr } from "msgpackr";
import {
  commandBytesMax,
  encodeCommand,
  sqlParamsPerStatementMax,
  sqlStatementsPerCommandMax,
  sqlTextBytesMax,
} from "../../src/adapters/sqlite/commands.ts";
import { SqliteStateMachine } from "../../src/adapters/sqlite/sqlite-state-machine.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { chunksOf, collect, databaseHash, kvEntry, openMachine, sqlEntry } from "./fixture.ts";

const schema = sqlEntry("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, at TEXT)");

describe("SqliteStateMachine apply", () => {
  it("applies statements with per-statement results and makes them visible to query()", (t) => {
    const { machine, remove } = openMachine();
    t.after(remove);
    assert.equal(machine.apply(schema, 1).ok, true);
    const result = machine.apply(
      sqlEntry("INSERT INTO t (v, at) VALUES ('a', datetime('now'))", {
        sql: "INSERT INTO t (v) VALUES (?), (?)",
        params: ["b", "c"],
      }),
      2,
    );
    assert.deepEqual(result, {
      ok: true,
      results: [
        { rowsChanged: 1, lastInsertRowid: 1 },
        { rowsChanged: 2, lastInsertRowid: 3 },
      ],
    });
    assert.deepEqual(machine.query("SELECT v, at FROM t WHERE id = ?", [1]).rows, [
      { v: "a", at: "2025-05-01 10:20:30" },
    ]);
  });

  it("a failing statement rolls back the whole entry, with the same error on every replica", (t) => {
    const replicas = [openMachine(), openMachine(), openMachine()];
    t.after(() => {
      for (const replica of replicas) replica.remove();
    });
    const failing = sqlEntry(
      "INSERT INTO t (v) VALUES ('x')",
      "INSERT INTO t (v) VALUES ('y')",
      "INSERT INTO t (v) VALUES ('x')",
    );
    const results = replicas.map(({ machine }) => {
      machine.apply(schema, 1);
      return machine.apply(failing, 2);
    });
    for (const result of results) {
      assert.deepEqual(result, {
        ok: false,
        error: { code: "SQLITE_CONSTRAINT", message: "UNIQUE constraint failed: t.v", statementIndex: 2 },
      });
    }
    for (const { machine } of replicas) {
      assert.deepEqual(machine.query("SELECT count(*) AS n FROM t").rows, [{ n: 0 }]);
      assert.equal(machine.appliedIndex, 2, "a failed entry is still applied (its index is recorded)");
    }
    assert.equal(new Set(replicas.map(({ dataDir }) => databaseHash(dataDir))).size, 1);
  });

  it("malformed SQL, an undecodable entry, INSERT OR ROLLBACK and unprepared SQL give error results, nothing applied", (t) => {
    const { machine, remove } = openMachine();
    t.after(remove);
    machine.apply(schema, 1);
    const malformed = machine.apply(sqlEntry("INSERT INTO t (v) VALUES ('a')", "INSRT INTO t VALUES (1)"), 2);
    assert.deepEqual(malformed, {
      ok: false,
      error: { code: "SQLITE_ERROR", message: 'near "INSRT": syntax error', statementIndex: 1 },
    });
    const garbage = machine.apply(new Uint8Array([0xc1, 0xff, 0x00]), 3) as {
      ok: boolean;
      error: { code: string };
    };
    assert.equal(garbage.error.code, "CONCLAVE_COMMAND_INVALID");
    const orRollback = machine.apply(
      sqlEntry("INSERT INTO t (v) VALUES ('z')", "INSERT OR ROLLBACK INTO t (v) VALUES ('z')"),
      4,
    );
    assert.equal(orRollback.ok, false);
    const unprepared = encodeCommand({
      kind: "sql",
      statements: [{ sql: "INSERT INTO t (v) VALUES (random())" }],
    });
    const refused = machine.apply(unprepared, 5) as { error: { code: string; message: string } };
    assert.equal(refused.error.code, "CONCLAVE_SQL_REFUSED");
    assert.match(refused.error.message, /random\(\).*not prepared/);
    const sneaky = encodeCommand({ kind: "sql", statements: [{ sql: "DELETE FROM _conclave_meta" }] });
    assert.equal(
      (machine.apply(sneaky, 6) as { error: { code: string } }).error.code,
      "CONCLAVE_SQL_REFUSED",
    );
    assert.deepEqual(machine.query("SELECT count(*) AS n FROM t").rows, [{ n: 0 }]);
    assert.equal(machine.appliedIndex, 6);
  });

  it("last_insert_rowid() and changes() do not leak from earlier entries (same after a restart)", (t) => {
    const first = openMachine();
    t.after(first.remove);
    first.machine.apply(schema, 1);
    first.machine.apply(sqlEntry("INSERT INTO t (v) VALUES ('a'), ('b')"), 2);
    const probe = sqlEntry("INSERT INTO t (v) SELECT 'r' || last_insert_rowid() || '-' || changes()");
    const before = first.machine.apply(probe, 3);
    first.machine.close();
    const reopened = openMachine(first.dataDir);
    assert.deepEqual(before, { ok: true, results: [{ rowsChanged: 1, lastInsertRowid: 3 }] });
    assert.deepEqual(reopened.machine.query("SELECT v FROM t WHERE id = 3").rows, [{ v: "r0-1" }]);
    reopened.machine.close();
  });

  it("oversized commands are refused naming the limit", () => {
    const refusedWith = (build: () => unknown, limit: string) =>
      assert.throws(build, (error: unknown) => isConclaveError(error) && error.message.includes(limit));
    refusedWith(
      () =>
        encodeCommand({
          kind: "sql",
          statements: Array.from({ length: sqlStatementsPerCommandMax + 1 }, () => ({ sql: "SELECT 1" })),
        }),
      "sqlStatementsPerCommandMax",
    );
    refusedWith(
      () => encodeCommand({ kind: "sql", statements: [{ sql: `SELECT '${"x".repeat(sqlTextBytesMax)}'` }] }),
      "sqlTextBytesMax",
    );
    refusedWith(
      () =>
        encodeCommand({
          kind: "sql",
          statements: [{ sql: "SELECT 1", params: new Array(sqlParamsPerStatementMax + 1).fill(1) }],
        }),
      "sqlParamsPerStatementMax",
    );
    const big = new Uint8Array(1024 * 1024);
    refusedWith(
      () =>
        encodeCommand({
          kind: "sql",
          statements: [{ sql: "SELECT ?, ?, ?, ?, ?", params: [big, big, big, big, big] }],
        }),
      "commandBytesMax",
    );
  });

  it("a committed oversized or invalid entry gives an error result, never a throw", (t) => {
    const { machine, remove } = openMachine();
    t.after(remove);
    const tooMany = new Packr({ useRecords: true }).pack({
      kind: "sql",
      statements: Array.from({ length: sqlStatementsPerCommandMax + 1 }, () => ({ sql: "SELECT 1" })),
    });
    const result = machine.apply(tooMany, 1) as { error: { message: string } };
    assert.match(result.error.message, /sqlStatementsPerCommandMax/);
    const huge = machine.apply(new Uint8Array(commandBytesMax + 1), 2) as { error: { code: string } };
    assert.equal(huge.error.code, "CONCLAVE_COMMAND_TOO_LARGE");
  });
});

describe("appliedIndex", () => {
  it("is exact across close and reopen, and an entry is never applied twice", (t) => {
    const { machine, dataDir, remove } = openMachine();
    t.after(remove);
    machine.apply(schema, 3);
    machine.apply(sqlEntry("INSERT INTO t (v) VALUES ('a')"), 7);
    machine.close();
    const reopened = openMachine(dataDir).machine;
    assert.equal(reopened.appliedIndex, 7);
    const again = reopened.apply(sqlEntry("INSERT INTO t (v) VALUES ('b')"), 7) as {
      error: { code: string };
    };
    assert.equal(again.error.code, "CONCLAVE_ALREADY_APPLIED");
    assert.deepEqual(reopened.query("SELECT count(*) AS n FROM t").rows, [{ n: 1 }]);
    reopened.close();
  });

  it("plain KV writes record the applied index and the KV revision with their batch's commit, never ahead of the data", (t) => {
    const { machine, dataDir, remove } = openMachine();
    t.after(remove);
    const put = (key: string): Uint8Array => kvEntry({ op: "put", key, value: new Uint8Array([1]) });
    // A batch of plain puts and a delete, then a lone put outside any batch.
    machine.beginBatch();
    machine.apply(put("a"), 1);
    machine.apply(put("b"), 2);
    machine.apply(kvEntry({ op: "delete", key: "a" }), 3);
    machine.endBatch();
    machine.apply(put("c"), 4);
    // A batch that never commits (the process dies first): neither its data nor its index stay.
    machine.beginBatch();
    machine.apply(put("lost"), 5);
    const crashedCopy = `${dataDir}-crashed`;
    cpSync(dataDir, crashedCopy, { recursive: true }); // the files as a crash would leave them
    t.after(() => rmSync(crashedCopy, { recursive: true, force: true }));
    machine.endBatch();
    machine.close();
    const reopened = openMachine(dataDir).machine;
    assert.equal(reopened.appliedIndex, 5);
    assert.equal(reopened.kv.revision, 5, "every write bumped the revision once");
    assert.deepEqual(
      reopened.kv.range("").map((kv) => kv.key),
      ["b", "c", "lost"],
    );
    reopened.close();
    const afterCrash = openMachine(crashedCopy).machine;
    assert.equal(afterCrash.appliedIndex, 4, "the uncommitted batch's index is not recorded");
    assert.equal(afterCrash.kv.revision, 4);
    assert.equal(afterCrash.kv.get("lost"), null);
    afterCrash.close();
  });
});

describe("query", () => {
  it("refuses writes, several statements and ATTACH; bounds the rows", (t) => {
    const { machine: first, dataDir, remove } = openMachine();
    first.close();
    const machine = new SqliteStateMachine({ dataDir, queryRowsMax: 5 });
    t.after(() => {
      machine.close();
      remove();
    });
    machine.apply(schema, 1);
    machine.apply(
      sqlEntry(
        "INSERT INTO t (v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) SELECT i FROM n",
      ),
      2,
    );
    for (const sql of [
      "DELETE FROM t",
      "SELECT 1; DELETE FROM t",
      "ATTACH 'x.db' AS x",
      "PRAGMA journal_mode = DELETE",
      "CREATE TEMP TABLE x (a)",
    ]) {
      assert.throws(
        () => machine.query(sql),
        (error: unknown) => isConclaveError(error, "CONCLAVE_QUERY_REFUSED"),
        sql,
      );
    }
    assert.throws(
      () => machine.query("SELEC 1"),
      (error: unknown) => isConclaveError(error, "CONCLAVE_QUERY_FAILED"),
    );
    const bounded = machine.query("SELECT v FROM t ORDER BY id");
    assert.equal(bounded.rows.length, 5);
    assert.equal(bounded.truncated, true);
    assert.deepEqual(machine.query("PRAGMA table_info(t)").rows.length, 3);
  });
});

describe("snapshot and restore", () => {
  it("round trip into a node with different data replaces it entirely", async (t) => {
    const source = openMachine();
    const target = openMachine();
    t.after(() => {
      source.remove();
      target.remove();
    });
    source.machine.apply(schema, 1);
    source.machine.apply(sqlEntry("INSERT INTO t (v) VALUES ('from-source')"), 2);
    source.machine.apply(kvEntry({ op: "put", key: "k", value: new Uint8Array([1, 2]) }), 3);
    target.machine.apply(sqlEntry("CREATE TABLE other (x)"), 1);
    target.machine.apply(kvEntry({ op: "put", key: "other", value: new Uint8Array([9]) }), 9);

    const snapshot = source.machine.snapshot();
    source.machine.apply(sqlEntry("INSERT INTO t (v) VALUES ('after-snapshot')"), 4);
    const bytes = await collect(snapshot.chunks);
    assert.equal(bytes.length, snapshot.sizeBytes);

    await target.machine.restore(chunksOf(bytes), bytes.length);
    assert.equal(target.machine.appliedIndex, 3);
    assert.deepEqual(target.machine.query("SELECT v FROM t").rows, [{ v: "from-source" }]);
    assert.equal(target.machine.query("SELECT name FROM sqlite_schema WHERE name = 'other'").rows.length, 0);
    assert.equal(target.machine.kv.get("other"), null);
    assert.deepEqual(target.machine.kv.get("k")?.value, new Uint8Array([1, 2]));
    // Applying the same entry after the restore gives the same state as the source.
    target.machine.apply(sqlEntry("INSERT INTO t (v) VALUES ('after-snapshot')"), 4);
    assert.equal(databaseHash(target.dataDir), databaseHash(source.dataDir));
  });

  it("refuses a truncated or corrupt snapshot and keeps the current database", async (t) => {
    const { machine, remove } = openMachine();
    t.after(remove);
    machine.apply(schema, 1);
    const bytes = await collect(machine.snapshot().chunks);
    await assert.rejects(
      machine.restore(chunksOf(bytes.subarray(0, 1000)), bytes.length),
      /ended after 1000/,
    );
    const garbage = Buffer.alloc(bytes.length, 0x42);
    await assert.rejects(machine.restore(chunksOf(garbage), garbage.length), (error: unknown) =>
      isConclaveError(error, "CONCLAVE_SNAPSHOT_INVALID"),
    );
    assert.equal(machine.appliedIndex, 1);
    assert.deepEqual(machine.query("SELECT count(*) AS n FROM t").rows, [{ n: 0 }]);
  });
});

describe("rowsChanged", () => {
  it("counts only what the statement itself changed (0 for DDL after a write)", (t) => {
    const { machine, remove } = openMachine();
    t.after(remove);
    machine.apply(schema, 1);
    const result = machine.apply(
      sqlEntry("INSERT INTO t (v) VALUES ('x'), ('y')", "CREATE TABLE u (a)", "DELETE FROM t"),
      2,
    );
    assert.equal(result.ok, true);
    assert.deepEqual(
      (result as unknown as { results: { rowsChanged: number }[] }).results.map((r) => r.rowsChanged),
      [2, 0, 2],
    );
  });
});
