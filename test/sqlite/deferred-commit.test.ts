/**
 * Deferred commits (`applyCommitIntervalMs`, `cluster.apply_commit_interval_ms`): batches of
 * applied entries stay in one open SQLite transaction until it is old enough. What a node relies
 * on: its own reads and watches see every applied entry at once; anything reading the file
 * through another connection (SQL queries, snapshots, a restart) sees only committed entries,
 * with the applied index that goes with them; and after a crash, applying the lost entries
 * again from the log gives the database it would have had.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { databaseHash, kvEntry, openMachine, sqlEntry } from "./fixture.ts";

const value = new Uint8Array([1, 2, 3]);

/** What another connection sees in the file: the committed applied index and KV row count. */
function committed(dataDir: string): { appliedIndex: number; keys: number } {
  const db = new DatabaseSync(join(dataDir, "db.sqlite"), { readOnly: true });
  try {
    const meta = db.prepare("SELECT applied_index AS i FROM _conclave_meta WHERE id = 0").get() as {
      i: number;
    };
    const kv = db.prepare("SELECT count(*) AS n FROM _conclave_kv").get() as { n: number };
    return { appliedIndex: meta.i, keys: kv.n };
  } finally {
    db.close();
  }
}

describe("deferred commits of applied entries", () => {
  it("keep batches in one open transaction until the interval has passed; own reads and watches see them at once", (t) => {
    let now = 1000;
    const { machine, dataDir, remove } = openMachine(undefined, {
      applyCommitIntervalMs: 100,
      now: () => now,
    });
    t.after(remove);
    const seen: string[] = [];
    machine.kv.watches.listen((changes) => {
      for (const change of changes) seen.push(change.key);
    });
    for (let batch = 0; batch < 3; batch++) {
      machine.beginBatch();
      for (let i = 1; i <= 10; i++)
        machine.apply(kvEntry({ op: "put", key: `k/${batch}/${i}`, value }), batch * 10 + i);
      machine.endBatch();
    }
    assert.equal(machine.appliedIndex, 30);
    assert.deepEqual(
      machine.kv.get("k/2/10")?.value,
      value,
      "the member's own read sees the open transaction",
    );
    assert.equal(seen.length, 30, "watches are told at the end of each batch, not at the commit");
    assert.deepEqual(committed(dataDir), { appliedIndex: 0, keys: 0 }, "nothing is committed yet");

    now += 99;
    machine.flushIfDue();
    assert.deepEqual(committed(dataDir), { appliedIndex: 0, keys: 0 }, "99 ms is not yet due");
    now += 1;
    machine.flushIfDue();
    assert.deepEqual(
      committed(dataDir),
      { appliedIndex: 30, keys: 30 },
      "due at 100 ms: all three batches commit",
    );
    assert.equal(seen.length, 30, "the commit tells watches nothing twice");
  });

  it("commit each batch at its end with an interval of 0", (t) => {
    const { machine, dataDir, remove } = openMachine(undefined, { applyCommitIntervalMs: 0, now: () => 0 });
    t.after(remove);
    machine.beginBatch();
    machine.apply(kvEntry({ op: "put", key: "a", value }), 1);
    machine.endBatch();
    assert.deepEqual(committed(dataDir), { appliedIndex: 1, keys: 1 });
  });

  it("commit a batch that brings the open transaction to 10,000 entries, however young", (t) => {
    const { machine, dataDir, remove } = openMachine(undefined, {
      applyCommitIntervalMs: 1000,
      now: () => 0,
    });
    t.after(remove);
    let index = 0;
    for (let batch = 0; batch < 10; batch++) {
      machine.beginBatch();
      for (let i = 0; i < 1000; i++) {
        index += 1;
        machine.apply(kvEntry({ op: "put", key: `k/${index}`, value }), index);
      }
      machine.endBatch();
      assert.equal(committed(dataDir).appliedIndex, batch < 9 ? 0 : 10_000, `after batch ${batch + 1}`);
    }
  });

  it("commit before a query, a snapshot and closing, which read the file through other connections", async (t) => {
    const { machine, dataDir, remove } = openMachine(undefined, {
      applyCommitIntervalMs: 1000,
      now: () => 0,
    });
    t.after(remove);
    machine.beginBatch();
    machine.apply(sqlEntry("CREATE TABLE t (v)"), 1);
    machine.apply(sqlEntry({ sql: "INSERT INTO t VALUES (?)", params: [7] }), 2);
    machine.endBatch();
    assert.deepEqual(machine.query("SELECT v FROM t").rows, [{ v: 7 }], "the query sees the applied insert");

    machine.beginBatch();
    machine.apply(kvEntry({ op: "put", key: "before-snapshot", value }), 3);
    machine.endBatch();
    const snapshot = machine.snapshot();
    for await (const _ of snapshot.chunks); // streams, then deletes, the copy
    assert.equal(committed(dataDir).appliedIndex, 3, "the snapshot committed first");

    machine.beginBatch();
    machine.apply(kvEntry({ op: "put", key: "before-close", value }), 4);
    machine.endBatch();
    machine.close();
    const reopened = openMachine(dataDir);
    assert.equal(reopened.machine.appliedIndex, 4, "closing committed the open transaction");
    reopened.machine.close();
  });

  it("commit and sync at a checkpoint, which returns the applied index the file then holds", async (t) => {
    // (That the sync reaches the disk cannot be seen without cutting the power; what is checked
    // is that the commit happened and the index returned is the one committed.)
    const { machine, dataDir, remove } = openMachine(undefined, {
      applyCommitIntervalMs: 1000,
      now: () => 0,
    });
    t.after(remove);
    machine.beginBatch();
    for (let i = 1; i <= 5; i++) machine.apply(kvEntry({ op: "put", key: `c/${i}`, value }), i);
    machine.endBatch();
    assert.deepEqual(committed(dataDir), { appliedIndex: 0, keys: 0 }, "nothing is committed yet");
    assert.equal(await machine.checkpoint(), 5);
    assert.deepEqual(committed(dataDir), { appliedIndex: 5, keys: 5 });
    machine.close();
  });

  it("lose only the open transaction in a crash; applying its entries again gives the same database", async (t) => {
    const entries = [sqlEntry("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")];
    for (let i = 0; i < 300; i++) {
      entries.push(kvEntry({ op: "put", key: `k/${i % 97}`, value: new Uint8Array(200).fill(i % 251) }));
      if (i % 10 === 0) entries.push(sqlEntry({ sql: "INSERT INTO t (v) VALUES (?)", params: [i] }));
      if (i % 50 === 0) entries.push(kvEntry({ op: "delete", key: `k/${i % 13}` }));
    }
    const crashed = openMachine();
    const reference = openMachine();
    t.after(() => {
      crashed.remove();
      reference.remove();
    });
    crashed.machine.close(); // the child process opens the directory
    const committedThrough = 150;
    // A real process applies every entry, commits through entry 150 only, and is killed (-9).
    const child = spawn(
      process.execPath,
      ["--input-type=module", "-e", crashingChild, crashed.dataDir, String(committedThrough)],
      { stdio: ["pipe", "inherit", "inherit"] },
    );
    child.stdin.end(
      Buffer.from(JSON.stringify(entries.map((entry) => Buffer.from(entry).toString("base64")))),
    );
    const signal = await new Promise((resolve) => child.on("exit", (_code, killedBy) => resolve(killedBy)));
    assert.equal(signal, "SIGKILL");
    assert.equal(
      committed(crashed.dataDir).appliedIndex,
      committedThrough,
      "the file holds the committed entries",
    );

    const restarted = openMachine(crashed.dataDir, { applyCommitIntervalMs: 100, now: () => 0 });
    assert.equal(
      restarted.machine.appliedIndex,
      committedThrough,
      "a restarted member starts from the committed index",
    );
    restarted.machine.beginBatch();
    for (let index = committedThrough + 1; index <= entries.length; index++)
      restarted.machine.apply(entries[index - 1] as Uint8Array, index);
    restarted.machine.endBatch();
    restarted.machine.close();

    reference.machine.beginBatch();
    for (const [position, entry] of entries.entries()) reference.machine.apply(entry, position + 1);
    reference.machine.endBatch();
    assert.equal(databaseHash(crashed.dataDir), databaseHash(reference.dataDir));
  });
});

const stateMachineModule = fileURLToPath(
  new URL("../../src/adapters/sqlite/sqlite-state-machine.ts", import.meta.url),
);

/** The child of the crash test: applies stdin's entries in batches of 10, then kills itself. */
const crashingChild = `
import { SqliteStateMachine } from ${JSON.stringify(stateMachineModule)};
const [dataDir, committedThrough] = [process.argv[1], Number(process.argv[2])];
let input = "";
for await (const chunk of process.stdin) input += chunk;
const entries = JSON.parse(input).map((text) => new Uint8Array(Buffer.from(text, "base64")));
let now = 0;
const machine = new SqliteStateMachine({ dataDir, kvHistoryRevisionsMax: 50, applyCommitIntervalMs: 100, now: () => now });
for (let start = 0; start < entries.length; start += 10) {
  machine.beginBatch();
  for (let index = start + 1; index <= Math.min(start + 10, entries.length); index++) machine.apply(entries[index - 1], index);
  machine.endBatch();
  if (machine.appliedIndex === committedThrough) { now += 100; machine.flushIfDue(); }
}
process.kill(process.pid, "SIGKILL");
`;
