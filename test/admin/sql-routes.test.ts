/**
 * The SQL routes of one real node: execute through the log, query at each consistency level,
 * and every bad input refused with a clear JSON error and nothing applied.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { authorizedFetch } from "../e2e/api-token.ts";
import { InProcessCluster, postJson, queryRows } from "./node-fixture.ts";

describe("SQL over HTTP on one node", { timeout: 30_000 }, () => {
  let cluster: InProcessCluster;
  let url: string;
  const execute = (statements: unknown) => postJson(`${url}/v1/sql/execute`, { statements });
  const count = async (): Promise<unknown> =>
    (await queryRows(url, "SELECT count(*) AS n FROM t")).rows[0]?.n;

  before(async () => {
    cluster = await InProcessCluster.start(1);
    url = cluster.node("n1").url;
    const created = await execute([
      { sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB, at TEXT)" },
    ]);
    assert.equal(created.status, 200, JSON.stringify(created.body));
  });
  after(async () => cluster.stop());

  it("executes statements as one transaction and answers rows changed and last rowid", async () => {
    const { status, body } = await execute([
      { sql: "INSERT INTO t (name) VALUES (?)", params: ["a"] },
      { sql: "INSERT INTO t (name, data) VALUES (?, ?)", params: ["b", { blob: "AAEC" }] },
    ]);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.results, [
      { rowsChanged: 1, lastInsertRowid: 1 },
      { rowsChanged: 1, lastInsertRowid: 2 },
    ]);
    const { rows } = await queryRows(url, "SELECT name, data FROM t ORDER BY id");
    assert.deepEqual(rows, [
      { name: "a", data: null },
      { name: "b", data: { blob: "AAEC" } },
    ]);
  });

  it("rewrites non-deterministic SQL on the primary (datetime('now') becomes a literal)", async () => {
    const { status } = await execute([{ sql: "INSERT INTO t (name, at) VALUES ('clock', datetime('now'))" }]);
    assert.equal(status, 200);
    const { rows } = await queryRows(url, "SELECT at FROM t WHERE name = 'clock'");
    assert.match(String(rows[0]?.at), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it("a failing statement rolls the whole transaction back: 422 naming the statement", async () => {
    const before = await count();
    const { status, body } = await execute([
      { sql: "INSERT INTO t (name) VALUES ('c')" },
      { sql: "INSERT INTO t (name) VALUES ('a')" }, // UNIQUE violation
    ]);
    assert.equal(status, 422);
    assert.equal(body.code, "SQLITE_CONSTRAINT");
    assert.equal(body.statementIndex, 1);
    assert.equal(body.outcome, "rolled-back");
    assert.equal(await count(), before, "the first insert was rolled back too");
  });

  it("malformed SQL is a 422 and applies nothing", async () => {
    const before = await count();
    const { status, body } = await execute([
      { sql: "INSERT INTO t (name) VALUES ('d')" },
      { sql: "INSERT INTO nowhere VALUS (1" },
    ]);
    assert.equal(status, 422);
    assert.equal(body.statementIndex, 1);
    assert.match(String(body.error), /syntax error|no such table/);
    assert.equal(await count(), before);
  });

  it("refuses constructs that cannot be replicated with 400 naming them, before proposing", async () => {
    const commitBefore = cluster.node("n1").node.runtime.status().commit;
    for (const sql of [
      "ATTACH DATABASE 'x.db' AS x",
      "BEGIN",
      "SELECT load_extension('x')",
      "PRAGMA journal_mode = DELETE",
    ]) {
      const { status, body } = await execute([{ sql }]);
      assert.equal(status, 400, sql);
      assert.equal(body.code, "CONCLAVE_SQL_REFUSED", sql);
      assert.equal(body.statementIndex, 0);
      assert.equal(typeof body.construct, "string");
    }
    assert.equal(cluster.node("n1").node.runtime.status().commit, commitBefore, "nothing went into the log");
  });

  it("answers malformed JSON, a bad shape and an oversized body with 400/400/413", async () => {
    const malformed = await authorizedFetch(`${url}/v1/sql/execute`, { method: "POST", body: "{ not json" });
    assert.equal(malformed.status, 400);
    const malformedBody = (await malformed.json()) as { error: string; code: string };
    assert.equal(malformedBody.code, "CONCLAVE_BAD_JSON");
    assert.match(malformedBody.error, /not valid JSON/);
    const shape = await postJson(`${url}/v1/sql/execute`, { statements: [{ sql: 1 }] });
    assert.equal(shape.status, 400);
    assert.match(String(shape.body.error), /statements\.0\.sql/);
    const empty = await postJson(`${url}/v1/sql/execute`, { statements: [] });
    assert.equal(empty.status, 400);
    const oversized = await authorizedFetch(`${url}/v1/sql/execute`, {
      method: "POST",
      body: JSON.stringify({ statements: [{ sql: `SELECT '${"x".repeat(4 * 1024 * 1024)}'` }] }),
    });
    assert.equal(oversized.status, 413);
    assert.match(((await oversized.json()) as { error: string }).error, /larger than 4194304 bytes/);
    const badParam = await execute([{ sql: "SELECT ?", params: [[1]] }]);
    assert.equal(badParam.status, 400);
    assert.match(String(badParam.body.error), /statements\.0\.params\.0/);
  });

  it("queries only read, at every consistency level; a bad level is a 400", async () => {
    for (const consistency of ["none", "weak", "linearizable", "strong"]) {
      const { status, rows } = await queryRows(url, "SELECT count(*) AS n FROM t", consistency);
      assert.equal(status, 200, consistency);
      assert.equal(typeof rows[0]?.n, "number");
    }
    const write = await queryRows(url, "DELETE FROM t");
    assert.equal(write.status, 400);
    assert.equal(write.body.code, "CONCLAVE_QUERY_REFUSED");
    const bad = await queryRows(url, "SELECT 1", "eventual");
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.error), /consistency must be/);
    const big = await postJson(`${url}/v1/sql/query`, {
      sql: "SELECT ? AS v",
      params: [{ int: "9007199254740993" }],
    });
    assert.deepEqual((big.body.rows as unknown[])[0], { v: { int: "9007199254740993" } });
  });

  it("keeps /health/live and /v1/status", async () => {
    assert.equal((await authorizedFetch(`${url}/health/live`)).status, 200);
    const status = (await (await authorizedFetch(`${url}/v1/status`)).json()) as Record<string, unknown>;
    for (const field of ["node", "role", "leader", "term", "commit", "applied", "state"])
      assert.ok(field in status, field);
    const unknown = await authorizedFetch(`${url}/v1/nothing`);
    assert.equal(unknown.status, 404);
  });
});
