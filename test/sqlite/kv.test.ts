import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import fc from "fast-check";
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

  for (const layout of ["WITHOUT ROWID tables", "values in both tables"] as const) {
    it(`a database made by an earlier release (${layout}) is rewritten once, with every answer kept`, (t) => {
      const directory = temporaryDirectory();
      t.after(directory.remove);
      const path = join(directory.path, "db.sqlite");
      const withoutRowid = layout === "WITHOUT ROWID tables" ? "WITHOUT ROWID" : "";
      // What an earlier release left after: put b (1), put a (2), put c (3), put a (4), with a
      // history of 2 revisions (compacted to 2, so b's value is only in _conclave_kv).
      const old = new DatabaseSync(path);
      old.exec(`PRAGMA journal_mode = WAL;
        CREATE TABLE _conclave_kv (key BLOB PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,
          mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL) ${withoutRowid};
        CREATE INDEX _conclave_kv_by_lease ON _conclave_kv (lease) WHERE lease <> 0;
        CREATE TABLE _conclave_kv_history (revision INTEGER NOT NULL, seq INTEGER NOT NULL, key BLOB NOT NULL,
          type TEXT NOT NULL, value BLOB, PRIMARY KEY (revision, seq)) ${withoutRowid};
        CREATE TABLE _conclave_kv_meta (id INTEGER PRIMARY KEY CHECK (id = 0), revision INTEGER NOT NULL,
          compacted_revision INTEGER NOT NULL);
        INSERT INTO _conclave_kv_meta VALUES (0, 4, 2);
        CREATE TABLE _conclave_meta (id INTEGER PRIMARY KEY, applied_index INTEGER NOT NULL);
        INSERT INTO _conclave_meta VALUES (0, 4);`);
      const kvRow = old.prepare("INSERT INTO _conclave_kv VALUES (?, ?, ?, ?, ?, 0)");
      kvRow.run(bytes("a"), bytes("a2"), 2, 4, 2);
      kvRow.run(bytes("b"), bytes("b1"), 1, 1, 1);
      kvRow.run(bytes("c"), bytes("c3"), 3, 3, 1);
      const historyRow = old.prepare("INSERT INTO _conclave_kv_history VALUES (?, 0, ?, 'put', ?)");
      historyRow.run(3, bytes("c"), bytes("c3"));
      historyRow.run(4, bytes("a"), bytes("a2"));
      old.close();

      const opened = openMachine(directory.path, { kvHistoryRevisionsMax: 2 });
      t.after(() => opened.machine.close());
      const { kv } = opened.machine;
      assert.equal(opened.machine.appliedIndex, 4);
      assert.deepEqual(
        kv.range("").map((entry) => [entry.key, Buffer.from(entry.value).toString(), entry.modRevision]),
        [
          ["a", "a2", 4],
          ["b", "b1", 1],
          ["c", "c3", 3],
        ],
      );
      assert.deepEqual(kv.get("a"), {
        key: "a",
        value: bytes("a2"),
        createRevision: 2,
        modRevision: 4,
        version: 2,
        lease: 0,
      });
      const watchable = kv.watches.changesSince(2, "", 10);
      assert.ok(watchable.ok);
      assert.deepEqual(
        watchable.changes.map((change) => [change.revision, change.key, change.type]),
        [
          [3, "c", "put"],
          [4, "a", "put"],
        ],
        "b's value, kept below the compacted revision, is not a change a watcher sees",
      );
      assert.equal(kv.watches.changesSince(1, "", 10).ok, false, "revision 1 is still compacted");

      let index = 4;
      opened.machine.apply(kvEntry({ op: "put", key: "b", value: bytes("b5") }), ++index);
      opened.machine.apply(kvEntry({ op: "delete", key: "c" }), ++index);
      assert.deepEqual(
        kv.range("").map((entry) => [entry.key, Buffer.from(entry.value).toString(), entry.version]),
        [
          ["a", "a2", 2],
          ["b", "b5", 2],
        ],
      );
      const after = new DatabaseSync(path, { readOnly: true });
      t.after(() => after.close());
      const columns = (
        after.prepare("SELECT name FROM pragma_table_info('_conclave_kv')").all() as { name: string }[]
      ).map((column) => column.name);
      assert.deepEqual(columns, ["key", "create_revision", "mod_revision", "version", "lease", "value_row"]);
      const tables = after
        .prepare("SELECT sql FROM sqlite_master WHERE name IN ('_conclave_kv', '_conclave_kv_history')")
        .all() as { sql: string }[];
      assert.equal(tables.length, 2);
      for (const table of tables) assert.doesNotMatch(table.sql, /WITHOUT ROWID/);
      assert.deepEqual(
        (
          after.prepare("SELECT revision, key, type FROM _conclave_kv_history ORDER BY revision").all() as {
            revision: number;
            key: Uint8Array;
            type: string;
          }[]
        ).map((row) => [row.revision, Buffer.from(row.key).toString(), row.type]),
        [
          [4, "a", "put"],
          [5, "b", "put"],
          [6, "c", "delete"],
        ],
        "b's and c's old rows went when they were overwritten and deleted; a's stays, a points at it",
      );
    });
  }

  it("history holds each value once: the rows keys point at and the uncompacted changes, nothing more", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant("put" as const),
              key: fc.constantFrom("a", "b", "c", "d"),
              n: fc.nat(99),
            }),
            fc.record({ op: fc.constant("delete" as const), key: fc.constantFrom("a", "b", "c", "d") }),
            fc.record({
              op: fc.constant("txn" as const),
              keys: fc.array(fc.constantFrom("a", "b", "c", "d"), { minLength: 1, maxLength: 3 }),
              n: fc.nat(99),
            }),
          ),
          { maxLength: 40 },
        ),
        (historyRevisionsMax, operations) => {
          const opened = openMachine(undefined, { kvHistoryRevisionsMax: historyRevisionsMax });
          try {
            const model = new Map<string, string>();
            let index = 0;
            for (const operation of operations) {
              if (operation.op === "put") {
                const value = `${operation.key}${operation.n}`;
                opened.machine.apply(
                  kvEntry({ op: "put", key: operation.key, value: bytes(value) }),
                  ++index,
                );
                model.set(operation.key, value);
              } else if (operation.op === "delete") {
                opened.machine.apply(kvEntry({ op: "delete", key: operation.key }), ++index);
                model.delete(operation.key);
              } else {
                // Puts to the same key twice in one revision: both rows are changes of that revision.
                const success = operation.keys.map((key, at) => ({
                  op: "put" as const,
                  key,
                  value: bytes(`${key}${operation.n + at}`),
                }));
                opened.machine.apply(kvEntry({ op: "txn", compare: [], success, failure: [] }), ++index);
                for (const [at, key] of operation.keys.entries()) model.set(key, `${key}${operation.n + at}`);
              }
              const kept = opened.machine.kv.range("").map((e) => [e.key, Buffer.from(e.value).toString()]);
              assert.deepEqual(
                kept,
                [...model.entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
              );
            }
            const db = new DatabaseSync(join(opened.dataDir, "db.sqlite"), { readOnly: true });
            try {
              const { compacted } = db
                .prepare("SELECT compacted_revision AS compacted FROM _conclave_kv_meta")
                .get() as { compacted: number };
              const stray = db
                .prepare(
                  `SELECT count(*) AS n FROM _conclave_kv_history AS h WHERE h.revision <= ?
                   AND NOT EXISTS (SELECT 1 FROM _conclave_kv AS k WHERE k.value_row = h.rowid)`,
                )
                .get(compacted) as { n: number };
              assert.equal(stray.n, 0, "no compacted row that no key points at");
              const pointed = db
                .prepare(
                  "SELECT count(DISTINCT value_row) AS n, count(*) AS keys FROM _conclave_kv JOIN _conclave_kv_history AS h ON h.rowid = value_row",
                )
                .get() as { n: number; keys: number };
              assert.equal(pointed.keys, model.size, "every key points at a history row that exists");
              assert.equal(pointed.n, model.size, "no two keys share a row");
            } finally {
              db.close();
            }
          } finally {
            opened.remove();
          }
        },
      ),
      { numRuns: 150 },
    );
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

  it("lease-renew-all moves every lease to at least nowMs + its TTL, never earlier", (t) => {
    const { machine, apply } = kvMachine(t);
    apply({ op: "lease-grant", ttlMs: 1000, nowMs: 10_000 }); // expires at 11,000
    apply({ op: "lease-grant", ttlMs: 60_000, nowMs: 10_000 }); // expires at 70,000
    apply({ op: "put", key: "held", value: bytes("x"), lease: 1 });
    // A new primary whose clock reads 15,000 (ahead of the one that granted them).
    assert.deepEqual(apply({ op: "lease-renew-all", nowMs: 15_000 }), {
      ok: true,
      revision: 1,
      renewedLeases: 2,
    });
    assert.deepEqual(apply({ op: "lease-expire", nowMs: 15_999 }).expiredLeases, [], "renewed to 16,000");
    assert.notEqual(machine.kv.get("held"), null);
    // A later renewal by a clock that is behind shortens nothing.
    assert.equal(apply({ op: "lease-renew-all", nowMs: 1_000 }).renewedLeases, 0);
    assert.deepEqual(apply({ op: "lease-expire", nowMs: 16_000 }).expiredLeases, [1]);
    assert.equal(machine.kv.get("held"), null);
    assert.deepEqual(
      apply({ op: "lease-expire", nowMs: 74_999 }).expiredLeases,
      [],
      "75,000 after the renewal at 15,000",
    );
    assert.deepEqual(apply({ op: "lease-expire", nowMs: 75_000 }).expiredLeases, [2]);
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

  it("a long history is compacted in steps of 1/64 of it: at least the window stays watchable, at most a step more", (t) => {
    const opened = openMachine(undefined, { kvHistoryRevisionsMax: 640 }); // steps of 10 revisions
    t.after(() => opened.machine.close());
    const oldestWatchable = () => {
      const since = opened.machine.kv.watches.changesSince(0);
      return since.ok ? 1 : since.error.oldestRevision;
    };
    const seenOldest = new Set<number>();
    for (let revision = 1; revision <= 1000; revision += 1) {
      opened.machine.apply(
        kvEntry({ op: "put", key: `k${revision % 7}`, value: bytes(String(revision)) }),
        revision,
      );
      const oldest = oldestWatchable();
      const kept = revision - oldest + 1;
      assert.ok(kept >= Math.min(revision, 640), `revision ${revision}: ${kept} revisions watchable`);
      assert.ok(kept < 640 + 10, `revision ${revision}: ${kept} revisions watchable`);
      seenOldest.add(oldest);
    }
    // Compacted 36 times (at revisions 650, 660 … 1000), not at each of the 360 revisions past the window.
    assert.deepEqual([...seenOldest], [1, ...Array.from({ length: 36 }, (_, step) => 11 + step * 10)]);
    const since = opened.machine.kv.watches.changesSince(360);
    assert.ok(since.ok && since.changes.length === 640, "the last 640 revisions, every change");
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
