/**
 * Background snapshots (`snapshotInBackground`): the copy is made on Node's thread pool (SQLite's
 * online backup) while entries keep being applied on the main thread. What a node relies on: the copy says which
 * index it holds, it holds exactly the state at that index (byte-identical once the later
 * entries are applied to it, as a member restored from it would do), and the main thread was
 * not held up while the copy was made.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isConclaveError } from "../../src/lib/errors.ts";
import { chunksOf, collect, databaseHash, kvEntry, openMachine, sqlEntry } from "./fixture.ts";

const value = new Uint8Array(2000).fill(65);

/**
 * Holds every thread of Node's pool until `release` (so a background copy queued meanwhile
 * cannot start): each thread blocks opening its own FIFO for reading, until `release` opens the
 * FIFO's other end. A fixed amount of work (a slow hash) could end early on a loaded machine.
 */
function occupyThreadPool(directory: string): { release: () => Promise<void> } {
  const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const fifos = Array.from({ length: poolSize }, (_, at) => join(directory, `pool-${at}.fifo`));
  for (const fifo of fifos) execFileSync("mkfifo", [fifo]);
  const readers = fifos.map((fifo) => open(fifo, "r"));
  return {
    release: async () => {
      // O_NONBLOCK write-open succeeds once a reader is blocked in open; retry until each is.
      for (const fifo of fifos) {
        for (;;) {
          try {
            closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
            break;
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
        }
      }
      for (const reader of await Promise.all(readers)) await reader.close();
    },
  };
}

/** A machine to copy and one to restore the copy into, both removed after the test. */
function sourceAndTarget(t: { after: (fn: () => void) => void }) {
  const source = openMachine();
  const target = openMachine();
  t.after(() => {
    source.remove();
    target.remove();
  });
  return { source, target };
}

describe("a background snapshot of the SQLite state machine", () => {
  it("holds the state at the index it names, while applies go on", async (t) => {
    const { source, target } = sourceAndTarget(t);
    const entries: Uint8Array[] = [sqlEntry("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")];
    for (let i = 0; i < 20_000; i++) entries.push(kvEntry({ op: "put", key: `k/${i}`, value }));
    for (let i = 0; i < 200; i++) {
      entries.push(sqlEntry({ sql: "INSERT INTO t (v) VALUES (?)", params: [`row ${i}`] }));
      // Each one changes the schema cookie, which the copy's header must name as of its index.
      entries.push(sqlEntry(`CREATE TABLE later_${i} (x)`));
    }
    let applied = 0;
    const applyNext = (count: number) => {
      source.machine.beginBatch();
      for (let i = 0; i < count && applied < entries.length; i++) {
        applied += 1;
        source.machine.apply(entries[applied - 1] as Uint8Array, applied);
      }
      source.machine.endBatch();
    };
    applyNext(20_001);

    const copying = source.machine.snapshotInBackground();
    // Applies go on while the copy is made (about 40 MB): the main thread is free.
    let turns = 0;
    let done = false;
    void copying.finally(() => {
      done = true;
    });
    while (!done) {
      applyNext(5);
      turns += 1;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const copy = await copying;
    assert.ok(turns > 1, `the main thread ran ${turns} turn(s) while the copy was made`);
    assert.ok(copy.index >= 20_001 && copy.index <= applied, `index ${copy.index} of ${applied}`);

    const bytes = await collect(copy.chunks);
    assert.equal(bytes.length, copy.sizeBytes);
    await target.machine.restore(chunksOf(bytes), bytes.length);
    assert.equal(target.machine.appliedIndex, copy.index);
    // The rest of the log applied to the copy gives the source's database, byte for byte.
    applyNext(entries.length);
    for (let index = copy.index + 1; index <= applied; index++)
      target.machine.apply(entries[index - 1] as Uint8Array, index);
    assert.equal(databaseHash(target.dataDir), databaseHash(source.dataDir));
  });

  it("holds back SQLite's automatic checkpoints while a copy runs, and resumes them after", async (t) => {
    const { source } = sourceAndTarget(t);
    let applied = 0;
    const applyPuts = (count: number) => {
      source.machine.beginBatch();
      for (let i = 0; i < count; i++) {
        applied += 1;
        source.machine.apply(kvEntry({ op: "put", key: `k/${applied}`, value }), applied);
      }
      source.machine.endBatch();
    };
    const database = join(source.dataDir, "db.sqlite");
    const written = () => {
      const { size, mtimeMs } = statSync(database);
      return `${size}/${mtimeMs}`;
    };
    const wal = () => statSync(`${database}-wal`).size;
    applyPuts(3000); // ~6 MB: past the 1,000-page threshold, so checkpoints have run
    // The thread pool is busy, so the copy is pending while entries are applied.
    const pool = occupyThreadPool(source.dataDir);
    const copying = source.machine.snapshotInBackground();
    const before = written();
    for (let batch = 0; batch < 30; batch++) applyPuts(100); // ~6 MB more, in 30 commits
    assert.equal(written(), before, "no checkpoint wrote to the database file during the copy");
    assert.ok(wal() > 5_000_000, `the WAL holds what was applied meanwhile (${wal()} bytes)`);
    await pool.release();
    const copy = await copying;
    await collect(copy.chunks); // deletes the copy
    applyPuts(10);
    assert.notEqual(written(), before, "the first commit after the copy checkpoints");
  });

  it("names the schema cookie as of its index when the copy starts after later entries", async (t) => {
    const { source, target } = sourceAndTarget(t);
    const entries: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) entries.push(kvEntry({ op: "put", key: `k/${i}`, value }));
    for (let i = 0; i < 50; i++) entries.push(sqlEntry(`CREATE TABLE t_${i} (x)`));
    const apply = (from: number, to: number) => {
      source.machine.beginBatch();
      for (let index = from; index <= to; index++)
        source.machine.apply(entries[index - 1] as Uint8Array, index);
      source.machine.endBatch();
    };
    apply(1, 2000);
    // Node's thread pool is busy (as with log writes), so the copy starts late: DDL entries are
    // applied and committed before it reads, and its header must carry their schema cookie.
    const pool = occupyThreadPool(source.dataDir);
    const copying = source.machine.snapshotInBackground();
    apply(2001, 2030);
    await pool.release();
    const copy = await copying;
    assert.ok(copy.index > 2000, `the copy started after the DDL entries (it holds entry ${copy.index})`);

    const bytes = await collect(copy.chunks);
    await target.machine.restore(chunksOf(bytes), bytes.length);
    apply(2031, entries.length);
    for (let index = copy.index + 1; index <= entries.length; index++)
      target.machine.apply(entries[index - 1] as Uint8Array, index);
    assert.equal(databaseHash(target.dataDir), databaseHash(source.dataDir));
  });
  it("leaves no files beside the database: not the copies, not the -wal/-shm SQLite made for them", async (t) => {
    const { source, target } = sourceAndTarget(t);
    for (let index = 1; index <= 200; index++)
      source.machine.apply(kvEntry({ op: "put", key: `k/${index}`, value }), index);
    const stray = (dataDir: string) => readdirSync(dataDir).filter((name) => name.includes(".tmp"));
    for (let round = 0; round < 3; round++) {
      const copy = await source.machine.snapshotInBackground();
      assert.deepEqual(
        stray(source.dataDir),
        [copy.file?.split("/").at(-1)],
        "only the copy, until it is read",
      );
      const bytes = await collect(copy.chunks); // reading it to the end deletes it
      await target.machine.restore(chunksOf(bytes), bytes.length);
    }
    assert.deepEqual(stray(source.dataDir), [], "every snapshot cleaned up after itself");
    assert.deepEqual(stray(target.dataDir), [], "every restore cleaned up after itself");

    // What a crash in the middle of a copy leaves is removed at the next start.
    target.machine.close();
    for (const name of [
      "snapshot-1-1.tmp",
      "snapshot-1-1.tmp-wal",
      "snapshot-1-1.tmp-shm",
      "restore.tmp-journal",
    ])
      writeFileSync(join(target.dataDir, name), "left by a crash");
    const reopened = openMachine(target.dataDir);
    t.after(() => reopened.machine.close());
    assert.deepEqual(stray(target.dataDir), []);
    assert.equal(reopened.machine.appliedIndex, 200);
  });
});

describe("a background snapshot overtaken by a restore", () => {
  it("fails with CONCLAVE_SNAPSHOT_FAILED, a failure the runtime tries again later, and the restored state stays", async (t) => {
    const { source, target } = sourceAndTarget(t);
    // The source: a database of about 40 MB, so that its copy takes a while.
    source.machine.beginBatch();
    for (let i = 1; i <= 20_000; i++) source.machine.apply(kvEntry({ op: "put", key: `k/${i}`, value }), i);
    source.machine.endBatch();
    // The snapshot to restore: a small database further on (as a leader's would be), so that
    // it is restored well before the 40 MB copy ends.
    target.machine.beginBatch();
    for (let i = 20_041; i <= 20_050; i++)
      target.machine.apply(kvEntry({ op: "put", key: `t/${i}`, value }), i);
    target.machine.endBatch();
    const leaderSnapshot = target.machine.snapshot();
    const leaderBytes = await collect(leaderSnapshot.chunks);

    const copying = source.machine.snapshotInBackground();
    await source.machine.restore(chunksOf(leaderBytes), leaderBytes.length);
    await assert.rejects(copying, (error) => {
      assert.ok(isConclaveError(error, "CONCLAVE_SNAPSHOT_FAILED"), String(error));
      assert.match(error.message, /a snapshot was restored meanwhile/);
      return true;
    });
    assert.equal(source.machine.appliedIndex, 20_050, "the restored state is the machine's");
    assert.equal(source.machine.kv.get("k/1"), null);
    assert.ok(source.machine.kv.get("t/20041") !== null);
    // …and the next snapshot works.
    const next = await source.machine.snapshotInBackground();
    assert.equal(next.index, 20_050);
    await collect(next.chunks);
    assert.deepEqual(
      readdirSync(source.dataDir).filter((name) => name.endsWith(".tmp")),
      [],
      "no copy left behind",
    );
  });
});
