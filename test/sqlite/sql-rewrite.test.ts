import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prepareSql, replicationProblem } from "../../src/adapters/sqlite/sql-rewrite.ts";
import { tokenizeSql } from "../../src/adapters/sqlite/sql-tokenizer.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { fixedClock } from "./fixture.ts";

function rewrite(sql: string): string {
  return prepareSql([{ sql }], fixedClock)[0]?.sql ?? "";
}

function refusal(sql: string): string {
  try {
    prepareSql([{ sql }], fixedClock);
  } catch (error) {
    assert.ok(isConclaveError(error, "CONCLAVE_SQL_REFUSED"), String(error));
    return error.message;
  }
  assert.fail(`${sql} was not refused`);
}

describe("tokenizer", () => {
  it("gives back the input and keeps strings, quoted names and comments whole", () => {
    const sql = `SELECT 'it''s now', "a""b", [x y], \`q\`, X'00ff', 1.5e3, :name -- random()\n/* 'now' */ ->> ;`;
    const tokens = tokenizeSql(sql);
    assert.equal(tokens.map((token) => token.text).join(""), sql);
    assert.deepEqual(
      tokens.filter((token) => token.kind !== "space").map((token) => token.kind),
      [
        "word",
        "string",
        "operator",
        "quoted",
        "operator",
        "quoted",
        "operator",
        "quoted",
        "operator",
        "blob",
        "operator",
        "number",
        "operator",
        "parameter",
        "comment",
        "comment",
        "operator",
        "operator",
      ],
    );
  });
});

describe("prepareSql rewrites what is not deterministic into literals", () => {
  it("rewrites the same text again with each call's clock and random source (its analysis is kept)", () => {
    const sql = "INSERT INTO t VALUES (random(), datetime('now'))";
    const at = (iso: string, byte: number) =>
      prepareSql([{ sql }], { now: new Date(iso), random: (n) => new Uint8Array(n).fill(byte) })[0]?.sql;
    assert.equal(
      at("2025-01-01T00:00:00Z", 1),
      "INSERT INTO t VALUES (72340172838076673, datetime('2025-01-01 00:00:00.000'))",
    );
    assert.equal(
      at("2026-02-03T04:05:06Z", 2),
      "INSERT INTO t VALUES (144680345676153346, datetime('2026-02-03 04:05:06.000'))",
    );
  });

  it("random() becomes an integer from the primary's random source", () => {
    assert.equal(rewrite("INSERT INTO t VALUES (random())"), "INSERT INTO t VALUES (506381209866536711)");
    const negative = prepareSql([{ sql: "SELECT RANDOM ( )" }], {
      ...fixedClock,
      random: (n) => new Uint8Array(n).fill(0xff),
    });
    assert.equal(negative[0]?.sql, "SELECT (-1)");
  });

  it("randomblob(N) becomes a blob literal of N bytes, refused when N is not a literal or too large", () => {
    assert.equal(rewrite("SELECT randomblob(3)"), "SELECT X'070707'");
    assert.match(refusal("SELECT randomblob(?)"), /randomblob.*integer literal/);
    assert.match(refusal("SELECT randomblob(2000000)"), /at most 1048576 bytes/);
  });

  it("CURRENT_TIMESTAMP/DATE/TIME and 'now' in date functions become the primary's time", () => {
    assert.equal(
      rewrite("SELECT CURRENT_TIMESTAMP, current_date, CURRENT_TIME"),
      "SELECT '2025-05-01 10:20:30', '2025-05-01', '10:20:30'",
    );
    assert.equal(
      rewrite(
        "SELECT datetime('now'), strftime('%s', 'NOW'), unixepoch('now', 'subsec'), julianday(coalesce(NULL, 'now'))",
      ),
      "SELECT datetime('2025-05-01 10:20:30.456'), strftime('%s', '2025-05-01 10:20:30.456'), unixepoch('2025-05-01 10:20:30.456', 'subsec'), julianday(coalesce(NULL, '2025-05-01 10:20:30.456'))",
    );
  });

  it("leaves 'now' and random() alone inside string literals, quoted names and comments", () => {
    const sql = `INSERT INTO "random()" VALUES ('now', 'datetime(''now'')') -- random() datetime('now')\n/* CURRENT_TIMESTAMP */`;
    assert.equal(rewrite(sql), sql);
    assert.equal(rewrite("SELECT upper('now'), date(x) FROM t"), "SELECT upper('now'), date(x) FROM t");
  });

  it("keeps parameters and gives the same text for the same inputs (replicas agree)", () => {
    const statements = [{ sql: "INSERT INTO t VALUES (?, random(), CURRENT_TIMESTAMP)", params: [1] }];
    assert.deepEqual(prepareSql(statements, fixedClock), prepareSql(statements, fixedClock));
    assert.deepEqual(prepareSql(statements, fixedClock)[0]?.params, [1]);
  });
});

describe("prepareSql refuses what cannot be replicated, naming the construct and why", () => {
  const cases: [string, RegExp][] = [
    ["ATTACH DATABASE 'x.db' AS x", /ATTACH cannot be replicated: another database file/],
    ["DETACH x", /DETACH cannot be replicated/],
    ["VACUUM", /VACUUM cannot be replicated/],
    ["BEGIN", /BEGIN cannot be replicated: the state machine owns transactions/],
    ["COMMIT", /COMMIT cannot be replicated/],
    ["ROLLBACK", /ROLLBACK cannot be replicated/],
    ["SAVEPOINT a", /SAVEPOINT cannot be replicated/],
    ["RELEASE a", /RELEASE cannot be replicated/],
    [
      "PRAGMA journal_mode = DELETE",
      /PRAGMA journal_mode = … cannot be replicated: settings are chosen by Conclave/,
    ],
    ["PRAGMA writable_schema", /PRAGMA writable_schema cannot be replicated: only read-only PRAGMAs/],
    ["SELECT load_extension('x')", /load_extension\(\) cannot be replicated: extensions/],
    ["SELECT total_changes()", /total_changes\(\) cannot be replicated/],
    ["SELECT * FROM dbstat", /dbstat cannot be replicated/],
    ["CREATE TEMP TABLE x (a)", /CREATE TEMP cannot be replicated: temporary objects/],
    ["INSERT INTO temp.x VALUES (1)", /temp\. cannot be replicated/],
    [
      "DELETE FROM _conclave_kv",
      /_conclave_kv cannot be replicated: names starting with _conclave are reserved/,
    ],
    ["INSERT INTO t VALUES (1); DROP TABLE t", /several statements in one SQL text/],
    [
      "CREATE TABLE t (a DEFAULT CURRENT_TIMESTAMP)",
      /CURRENT_TIMESTAMP in CREATE cannot be replicated: a schema object/,
    ],
    [
      "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (random()); END",
      /random\(\) in CREATE/,
    ],
    ["   -- nothing\n", /an empty statement/],
  ];
  for (const [sql, expected] of cases) {
    it(sql.trim() || "(empty)", () => assert.match(refusal(sql), expected));
  }

  it("allows read-only PRAGMAs, one trailing semicolon and triggers with several statements", () => {
    assert.equal(rewrite("PRAGMA table_info(t)"), "PRAGMA table_info(t)");
    assert.equal(rewrite("INSERT INTO t VALUES (1);"), "INSERT INTO t VALUES (1);");
    const trigger = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); DELETE FROM v; END;";
    assert.equal(rewrite(trigger), trigger);
  });

  it("names the statement index", () => {
    assert.throws(
      () => prepareSql([{ sql: "SELECT 1" }, { sql: "VACUUM" }], fixedClock),
      (error: unknown) => isConclaveError(error) && error.details.statementIndex === 1,
    );
  });

  it("at apply time, an unprepared non-deterministic statement is a problem", () => {
    assert.match(replicationProblem("SELECT random()")?.reason ?? "", /not prepared/);
    assert.equal(replicationProblem(rewrite("SELECT random()")), null);
  });
});
