/**
 * The cache of replicated SQL statements (replicated-statements.ts): what each member relies on
 * is that a statement is prepared once per text while nothing changed, and prepared afresh after
 * anything that could make a kept statement differ from a fresh one. That the outcome is the
 * same with and without the cache is the determinism property test's (a replica reopened every
 * 4 entries against three that keep their statements).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import { ReplicatedStatements } from "../../src/adapters/sqlite/replicated-statements.ts";

function database(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE t (a, b)");
  return db;
}

describe("replicated statements", () => {
  it("prepare a text once while the schema version stays, with BigInt counts (as results carry them)", () => {
    const db = database();
    const cache = new ReplicatedStatements();
    const first = cache.statement(db, "INSERT INTO t VALUES (?, ?)", 1);
    assert.equal(cache.statement(db, "INSERT INTO t VALUES (?, ?)", 1), first);
    assert.deepEqual({ ...first.run(1, 2) }, { changes: 1n, lastInsertRowid: 1n });
  });

  it("prepare afresh after the schema version moved, after ANALYZE, and after a failure", () => {
    const db = database();
    const cache = new ReplicatedStatements();
    const insert = "INSERT INTO t VALUES (1, 2)";
    const first = cache.statement(db, insert, 1);
    assert.notEqual(cache.statement(db, insert, 2), first, "a new schema version drops the cache");

    const second = cache.statement(db, insert, 2);
    cache.statement(db, "ANALYZE", 2);
    cache.ran("ANALYZE", true);
    assert.notEqual(cache.statement(db, insert, 2), second, "ANALYZE drops the cache");

    const third = cache.statement(db, insert, 2);
    cache.ran(insert, false);
    assert.notEqual(cache.statement(db, insert, 2), third, "a statement that failed is not kept");
  });

  it("keep at most its capacity, dropping the least recently used", () => {
    const db = database();
    const cache = new ReplicatedStatements(2);
    const a = cache.statement(db, "SELECT 1", 1);
    cache.statement(db, "SELECT 2", 1);
    assert.equal(cache.statement(db, "SELECT 1", 1), a, "used again: now the most recent");
    cache.statement(db, "SELECT 3", 1);
    assert.equal(cache.size, 2);
    assert.equal(cache.statement(db, "SELECT 1", 1), a, "kept");
    assert.equal(cache.size, 2, "SELECT 2 was dropped to make room");
  });

  it("prepare texts over 2,048 characters each time", () => {
    const db = database();
    const cache = new ReplicatedStatements();
    const long = `SELECT 1 ${" ".repeat(2100)}`;
    assert.notEqual(cache.statement(db, long, 1), cache.statement(db, long, 1));
    assert.equal(cache.size, 0);
  });

  it("forget every statement with clear() (a restore opens a new connection)", () => {
    const db = database();
    const cache = new ReplicatedStatements();
    const first = cache.statement(db, "SELECT 1", 1);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.notEqual(cache.statement(db, "SELECT 1", 1), first);
  });
});
