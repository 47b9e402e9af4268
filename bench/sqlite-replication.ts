/**
 * Statement replication vs SQLite session changesets, apply cost per entry on a follower and
 * entry size, for single-row inserts and for a 100-row update. A changeset is produced by
 * executing the statement on the primary first (createSession → run → changeset), so it cannot
 * be made before the entry is committed without applying uncommitted writes on the primary.
 *
 * Run: node scripts/node24.mjs bench/sqlite-replication.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { encodeCommand } from "../src/adapters/sqlite/commands.ts";
import { SqliteStateMachine } from "../src/adapters/sqlite/sqlite-state-machine.ts";

const entryCount = 2000;
const schema = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER DEFAULT 0)";

function openPlain(directory: string, name: string): DatabaseSync {
  const db = new DatabaseSync(join(directory, name));
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  db.exec(schema);
  return db;
}

interface Workload {
  name: string;
  /** The statement of entry i. */
  statement: (i: number) => { sql: string; params: (string | number)[] };
  seedRows: number;
}

const workloads: Workload[] = [
  {
    name: "single-row insert",
    statement: (i) => ({ sql: "INSERT INTO t (v) VALUES (?)", params: [`value-${i}`] }),
    seedRows: 0,
  },
  {
    name: "100-row update",
    statement: (i) => ({
      sql: "UPDATE t SET n = n + 1, v = ? WHERE id BETWEEN ? AND ?",
      params: [`v${i}`, (i % 9) * 100 + 1, (i % 9) * 100 + 100],
    }),
    seedRows: 1000,
  },
];

function seed(db: DatabaseSync, rows: number): void {
  if (rows > 0)
    db.exec(
      `INSERT INTO t (v) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${rows}) SELECT 'seed' FROM s`,
    );
}

function runWorkload(workload: Workload): void {
  const directory = mkdtempSync(join(tmpdir(), "conclave-bench-sqlite-"));
  try {
    // (a) statements: the follower applies the encoded command through the state machine.
    const machine = new SqliteStateMachine({ dataDir: join(directory, "a") });
    const setup = [
      { sql: schema },
      ...(workload.seedRows > 0
        ? [
            {
              sql: `INSERT INTO t (v) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${workload.seedRows}) SELECT 'seed' FROM s`,
            },
          ]
        : []),
    ];
    machine.apply(encodeCommand({ kind: "sql", statements: setup }), 1);
    const statementEntries = Array.from({ length: entryCount }, (_, i) =>
      encodeCommand({ kind: "sql", statements: [workload.statement(i)] }),
    );
    let start = performance.now();
    for (const [i, data] of statementEntries.entries()) machine.apply(data, i + 2);
    const statementMicros = ((performance.now() - start) * 1000) / entryCount;
    machine.close();

    // (b) changesets: the primary executes under a session, the follower applies the changeset.
    const primary = openPlain(directory, "primary.sqlite");
    const follower = openPlain(directory, "follower.sqlite");
    seed(primary, workload.seedRows);
    seed(follower, workload.seedRows);
    const changesets: Uint8Array[] = [];
    start = performance.now();
    for (let i = 0; i < entryCount; i += 1) {
      const session = primary.createSession();
      const { sql, params } = workload.statement(i);
      primary.prepare(sql).run(...params);
      changesets.push(session.changeset());
      session.close();
    }
    const primaryMicros = ((performance.now() - start) * 1000) / entryCount;
    start = performance.now();
    for (const changeset of changesets) {
      follower.exec("BEGIN");
      follower.applyChangeset(changeset);
      follower.exec("COMMIT");
    }
    const changesetMicros = ((performance.now() - start) * 1000) / entryCount;
    const bare = openPlain(directory, "bare.sqlite");
    seed(bare, workload.seedRows);
    start = performance.now();
    for (let i = 0; i < entryCount; i += 1) {
      const { sql, params } = workload.statement(i);
      bare.exec("BEGIN");
      bare.prepare(sql).run(...params);
      bare.exec("COMMIT");
    }
    const bareMicros = ((performance.now() - start) * 1000) / entryCount;
    bare.close();
    primary.close();
    follower.close();

    const average = (sizes: number[]) =>
      Math.round(sizes.reduce((sum, size) => sum + size, 0) / sizes.length);
    console.log(`\n${workload.name} (${entryCount} entries)`);
    console.log(
      `  statements: apply ${statementMicros.toFixed(1)} µs/entry (state machine, incl. decode + checks + meta), entry ${average(statementEntries.map((d) => d.byteLength))} B; bare statement in a transaction ${bareMicros.toFixed(1)} µs`,
    );
    console.log(
      `  changesets: apply ${changesetMicros.toFixed(1)} µs/entry (bare applyChangeset in a transaction), primary execute+capture ${primaryMicros.toFixed(1)} µs/entry, changeset ${average(changesets.map((c) => c.byteLength))} B`,
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

console.log(`SQLite replication: statements vs changesets, Node ${process.version}`);
for (const workload of workloads) runWorkload(workload);
