import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import type { KvOperation } from "../../src/adapters/sqlite/commands.ts";
import { encodeCommand } from "../../src/adapters/sqlite/commands.ts";
import {
  isLockOwner,
  lockAcquireCommand,
  lockOwner,
  lockReleaseCommand,
} from "../../src/adapters/sqlite/kv-lock.ts";
import type { KvChange } from "../../src/adapters/sqlite/kv-store.ts";
import { chunksOf, collect, kvEntry, openMachine, temporaryDirectory } from "./fixture.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

function kvMachine(t: { after: (fn: () => void) => void }) {
  const opened = openMachine();
  t.after(opened.remove);
  let index = 0;
  const apply = (operation: KvOperation) =>
    opened.machine.apply(kvEntry(operation), ++index) as Record<string, unknown>;
  return { machine: opened.machine, apply, next: () => ++index };
}

describe("KV store", () => {
  it("put/get/delete with revisions, versions and create revisions", (t) => {
    const { machine, apply } = kvMachine(t);
    assert.deepEqual(apply({ op: "put", key: "a", value: bytes("1") }), {
      ok: true,
      revision: 1,
      created: true,
    });
    assert.deepEqual(apply({ op: "put", key: "a", value: bytes("2") }), {
      ok: true,
      revision: 2,
      created: false,
    });
    apply({ op: "put", key: "b", value: bytes("x") });
    assert.deepEqual(machine.kv.get("a"), {
      key: "a",
      value: bytes("2"),
      createRevision: 1,
      modRevision: 2,
      version: 2,
      lease: 0,
    });
    assert.deepEqual(apply({ op: "delete", key: "a" }), { ok: true, revision: 4, deleted: 1 });
    assert.deepEqual(
      apply({ op: "delete", key: "a" }),
      { ok: true, revision: 4, deleted: 0 },
      "no change, no new revision",
    );
    assert.equal(machine.kv.get("a"), null);
    apply({ op: "put", key: "a", value: bytes("3") });
    assert.equal(machine.kv.get("a")?.version, 1, "a recreated key starts again at version 1");
    assert.equal(machine.kv.get("a")?.createRevision, 5);
  });

  it("compare-and-set on value and on mod_revision", (t) => {
    const { machine, apply } = kvMachine(t);
    assert.equal(apply({ op: "cas", key: "k", expect: { value: null }, value: bytes("v1") }).succeeded, true);
    assert.equal(
      apply({ op: "cas", key: "k", expect: { value: null }, value: bytes("v2") }).succeeded,
      false,
    );
    assert.equal(
      apply({ op: "cas", key: "k", expect: { value: bytes("v1") }, value: bytes("v2") }).succeeded,
      true,
    );
    assert.equal(
      apply({ op: "cas", key: "k", expect: { modRevision: 1 }, value: bytes("v3") }).succeeded,
      false,
    );
    assert.equal(
      apply({ op: "cas", key: "k", expect: { modRevision: 2 }, value: bytes("v3") }).succeeded,
      true,
    );
    assert.deepEqual(machine.kv.get("k")?.value, bytes("v3"));
  });

  it("range by prefix in byte order with a limit", (t) => {
    const { machine, apply } = kvMachine(t);
    for (const key of ["app/b", "app/a", "apq", "app/c", "ap", "app/é"])
      apply({ op: "put", key, value: bytes(key) });
    assert.deepEqual(
      machine.kv.range("app/").map((kv) => kv.key),
      ["app/a", "app/b", "app/c", "app/é"],
    );
    assert.deepEqual(
      machine.kv.range("app/", 2).map((kv) => kv.key),
      ["app/a", "app/b"],
    );
    assert.equal(machine.kv.range("").length, 6);
  });

  it("stores a 1 KB value in its table's leaf page, with no overflow page of its own", (t) => {
    // A WITHOUT ROWID row over ~1,000 bytes spilled into a 4 KiB overflow page, in the KV table
    // and again in the history: about 2.3 pages per 1 KB put, each written to the WAL and at the
    // checkpoint. Rowid tables hold such rows in the leaf: about 0.7 pages per put.
    const opened = openMachine(undefined, { kvHistoryRevisionsMax: 1000 });
    t.after(opened.remove);
    const pageCount = () => {
      const db = new DatabaseSync(join(opened.dataDir, "db.sqlite"), { readOnly: true });
      try {
        return (db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count;
      } finally {
        db.close();
      }
    };
    const before = pageCount();
    const value = new Uint8Array(1000).fill(120);
    const puts = 300;
    for (let i = 0; i < puts; i++)
      opened.machine.apply(kvEntry({ op: "put", key: `k/${(i * 7919) % puts}`, value }), i + 1);
    const pagesPerPut = (pageCount() - before) / puts;
    assert.ok(pagesPerPut < 1.2, `${pagesPerPut.toFixed(2)} pages per 1 KB put`);
    assert.deepEqual(opened.machine.kv.get("k/7")?.value, value);
  });

  it("a database made by an earlier release, with WITHOUT ROWID tables, keeps working as it is", (t) => {
    const directory = temporaryDirectory();
    t.after(directory.remove);
    const old = new DatabaseSync(join(directory.path, "db.sqlite"));
    old.exec(`PRAGMA journal_mode = WAL;
      CREATE TABLE _conclave_kv (key BLOB PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,
        mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE _conclave_kv_history (revision INTEGER NOT NULL, seq INTEGER NOT NULL, key BLOB NOT NULL,
        type TEXT NOT NULL, value BLOB, PRIMARY KEY (revision, seq)) WITHOUT ROWID;`);
    old.close();
    const opened = openMachine(directory.path, { kvHistoryRevisionsMax: 2 });
    t.after(() => opened.machine.close());
    let index = 0;
    for (const key of ["b", "a", "c"])
      opened.machine.apply(kvEntry({ op: "put", key, value: bytes(key) }), ++index);
    opened.machine.apply(kvEntry({ op: "delete", key: "b" }), ++index);
    assert.deepEqual(
      opened.machine.kv.range("").map((kv) => kv.key),
      ["a", "c"],
    );
    const history = opened.machine.kv.watches.changesSince(2, "", 10);
    assert.ok(history.ok);
    assert.deepEqual(
      history.changes.map((change) => [change.revision, change.key, change.type]),
      [
        [3, "c", "put"],
        [4, "b", "delete"],
      ],
    );
    const layout = new DatabaseSync(join(directory.path, "db.sqlite"), { readOnly: true });
    t.after(() => layout.close());
    const tables = layout
      .prepare("SELECT sql FROM sqlite_master WHERE name IN ('_conclave_kv', '_conclave_kv_history')")
      .all() as { sql: string }[];
    assert.equal(tables.length, 2);
    for (const table of tables) assert.match(table.sql, /WITHOUT ROWID/);
  });

  it("txn runs the success or the failure branch atomically, like etcd", (t) => {
    const { machine, apply } = kvMachine(t);
    apply({ op: "put", key: "x", value: bytes("1") });
    const txn = (version: number) =>
      apply({
        op: "txn",
        compare: [{ key: "x", target: "version", operator: "=", value: version }],
        success: [
          { op: "put", key: "y", value: bytes("yes") },
          { op: "delete", key: "x" },
        ],
        failure: [{ op: "get", key: "x" }],
      });
    const failed = txn(5);
    assert.equal(failed.succeeded, false);
    assert.deepEqual((failed.results as { kv: { value: Uint8Array } }[])[0]?.kv.value, bytes("1"));
    const succeeded = txn(1);
    assert.deepEqual(
      { succeeded: succeeded.succeeded, revision: succeeded.revision },
      { succeeded: true, revision: 2 },
    );
    assert.equal(machine.kv.get("x"), null);
    assert.equal(machine.kv.get("y")?.modRevision, 2, "every change of one txn shares its revision");
    const missingLease = apply({
      op: "txn",
      compare: [],
      success: [
        { op: "put", key: "z", value: bytes("") },
        { op: "put", key: "w", value: bytes(""), lease: 99 },
      ],
      failure: [],
    });
    assert.deepEqual(missingLease.ok, false);
    assert.equal(machine.kv.get("z"), null, "a failed txn applies nothing");
  });

  it("leases expire only through lease-expire commands (the primary's clock) and delete their keys", (t) => {
    const { machine, apply } = kvMachine(t);
    const grant = apply({ op: "lease-grant", ttlMs: 1000, nowMs: 10_000 });
    assert.deepEqual(grant, { ok: true, revision: 0, leaseId: 1, expiresAtMs: 11_000 });
    apply({ op: "put", key: "session/1", value: bytes("alive"), lease: 1 });
    apply({ op: "put", key: "plain", value: bytes("stays") });
    assert.equal(apply({ op: "lease-keepalive", leaseId: 1, nowMs: 10_500 }).expiresAtMs, 11_500);
    assert.deepEqual(apply({ op: "lease-expire", nowMs: 11_499 }).expiredLeases, []);
    assert.notEqual(machine.kv.get("session/1"), null, "nothing expires by a member's own clock");
    const expired = apply({ op: "lease-expire", nowMs: 11_500 });
    assert.deepEqual({ leases: expired.expiredLeases, keys: expired.deletedKeys }, { leases: [1], keys: 1 });
    assert.equal(machine.kv.get("session/1"), null);
    assert.notEqual(machine.kv.get("plain"), null);
    assert.equal(
      (apply({ op: "lease-keepalive", leaseId: 1, nowMs: 11_600 }).error as { code: string }).code,
      "CONCLAVE_LEASE_NOT_FOUND",
    );
    assert.equal(
      (apply({ op: "put", key: "q", value: bytes(""), lease: 1 }).error as { code: string }).code,
      "CONCLAVE_LEASE_NOT_FOUND",
    );
    apply({ op: "lease-grant", ttlMs: 50, nowMs: 0 });
    apply({ op: "put", key: "r", value: bytes(""), lease: 2 });
    assert.equal(apply({ op: "lease-revoke", leaseId: 2 }).deletedKeys, 1);
  });

  it("watch history, listeners and the compacted error naming the oldest revision", (t) => {
    const { machine, apply } = kvMachine(t); // history keeps 50 revisions
    const seen: KvChange[] = [];
    const stop = machine.kv.watches.listen((changes) => seen.push(...changes));
    apply({ op: "put", key: "w/a", value: bytes("1") });
    apply({ op: "put", key: "other", value: bytes("2") });
    apply({ op: "delete", key: "w/a" });
    stop();
    apply({ op: "put", key: "w/b", value: bytes("3") });
    assert.deepEqual(
      seen.map((change) => [change.revision, change.key, change.type]),
      [
        [1, "w/a", "put"],
        [2, "other", "put"],
        [3, "w/a", "delete"],
      ],
    );
    const since = machine.kv.watches.changesSince(1, "w/");
    assert.deepEqual(
      since.ok && since.changes.map((change) => [change.revision, change.key, change.type, change.value]),
      [
        [3, "w/a", "delete", null],
        [4, "w/b", "put", bytes("3")],
      ],
    );
    for (let round = 0; round < 60; round += 1)
      apply({ op: "put", key: "spin", value: bytes(String(round)) });
    const compacted = machine.kv.watches.changesSince(1);
    assert.equal(compacted.ok, false);
    assert.equal(!compacted.ok && compacted.error.code, "compacted");
    assert.equal(!compacted.ok && compacted.error.oldestRevision, 64 - 50 + 1);
    assert.match(!compacted.ok ? compacted.error.message : "", /oldest revision still available is 15/);
    assert.equal(machine.kv.watches.changesSince(14).ok, true);
  });

  it("lock ownership goes to the lowest create_revision and passes on when the owner's lease expires", (t) => {
    const { machine } = kvMachine(t);
    let index = 100;
    const run = (data: Uint8Array) => machine.apply(data, ++index) as Record<string, unknown>;
    const leaseA = run(kvEntry({ op: "lease-grant", ttlMs: 1000, nowMs: 0 })).leaseId as number;
    const leaseB = run(kvEntry({ op: "lease-grant", ttlMs: 5000, nowMs: 0 })).leaseId as number;
    assert.equal(lockOwner(machine.kv, "job"), null);
    run(encodeCommand(lockAcquireCommand("job", leaseB)));
    run(encodeCommand(lockAcquireCommand("job", leaseA)));
    run(encodeCommand(lockAcquireCommand("job", leaseB))); // idempotent: keeps its place
    assert.equal(isLockOwner(machine.kv, "job", leaseB), true, "the first contender owns the lock");
    assert.equal(isLockOwner(machine.kv, "job", leaseA), false);
    run(encodeCommand(lockReleaseCommand("job", leaseB)));
    assert.equal(isLockOwner(machine.kv, "job", leaseA), true);
    run(encodeCommand(lockAcquireCommand("job", leaseB)));
    run(kvEntry({ op: "lease-expire", nowMs: 1000 }));
    assert.equal(isLockOwner(machine.kv, "job", leaseB), true, "the expired owner's key is gone");
  });

  it("a member restored from a snapshot continues from the snapshot's revision and history", async (t) => {
    const source = openMachine(undefined, { kvHistoryRevisionsMax: 5 });
    const target = openMachine(undefined, { kvHistoryRevisionsMax: 5 });
    t.after(() => {
      source.remove();
      target.remove();
    });
    for (let index = 1; index <= 8; index++)
      source.machine.apply(kvEntry({ op: "put", key: `s${index}`, value: bytes("v") }), index);
    // The target has read (and may keep) its own, higher revision and compaction point.
    for (let index = 1; index <= 30; index++)
      target.machine.apply(kvEntry({ op: "put", key: `t${index}`, value: bytes("v") }), index);
    assert.equal(target.machine.kv.revision, 30);
    assert.equal(target.machine.kv.watches.changesSince(10).ok, false);

    const bytesOfSnapshot = await collect(source.machine.snapshot().chunks);
    await target.machine.restore(chunksOf(bytesOfSnapshot), bytesOfSnapshot.length);
    assert.equal(target.machine.kv.revision, 8);
    const since = target.machine.kv.watches.changesSince(3);
    assert.ok(since.ok, "revisions after 3 are kept (history of 5)");
    assert.deepEqual(
      since.changes.map((change) => change.revision),
      [4, 5, 6, 7, 8],
    );
    assert.deepEqual(target.machine.apply(kvEntry({ op: "put", key: "next", value: bytes("v") }), 9), {
      ok: true,
      revision: 9,
      created: true,
    });
  });
});
