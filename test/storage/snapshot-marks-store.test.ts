/**
 * Snapshot marks in the stores: a mark (`inStateMachine`, no data) is stored beside copies,
 * survives a reopen, and is kept only while it is the newest snapshot; copies are kept by the
 * retained count as before, so a copy being sent to a follower is not dropped by the marks
 * taken meanwhile. A mark and a copy may share an index and term (two files, the mark wins).
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { decodeSnapshotMeta, encodeSnapshotMeta } from "../../src/adapters/storage/entry-codec.ts";
import { FileSnapshotStore } from "../../src/adapters/storage/file-snapshot-store.ts";
import { MemorySnapshotStore } from "../../src/adapters/storage/memory-snapshot-store.ts";
import type { SnapshotStore } from "../../src/ports/storage.ts";
import type { SnapshotMeta } from "../../src/raft/types.ts";
import { snapshotMeta, writeSnapshot } from "./storage-compliance.ts";

const mark = (index: number, term: number): SnapshotMeta => ({
  ...snapshotMeta(index, term, 0),
  inStateMachine: true,
});

async function withDirectory(body: (directory: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "conclave-marks-"));
  try {
    await body(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

test("a mark's description round-trips; a mark that claims data is refused", () => {
  assert.deepEqual(decodeSnapshotMeta(encodeSnapshotMeta(mark(40, 3))), mark(40, 3));
  const copy = snapshotMeta(40, 3, 100);
  assert.deepEqual(decodeSnapshotMeta(encodeSnapshotMeta(copy)), copy, "a copy has no flag");
  assert.equal(decodeSnapshotMeta(encodeSnapshotMeta({ ...copy, inStateMachine: true })), null);
});

for (const [name, make] of [
  ["file", async (directory: string) => new FileSnapshotStore(join(directory, "snapshots"))],
  ["memory", async () => new MemorySnapshotStore()],
] as const) {
  test(`${name} store: keeps the newest two copies, of those behind a mark only the newest, and only the newest mark`, async () => {
    await withDirectory(async (directory) => {
      const store: SnapshotStore = await make(directory);
      await store.open();
      await writeSnapshot(store, snapshotMeta(10, 1, 500));
      await writeSnapshot(store, snapshotMeta(20, 1, 500));
      assert.equal(store.read(snapshotMeta(10, 1, 500), 0, 1000).byteLength, 500, "two copies kept");
      await writeSnapshot(store, mark(30, 1));
      await writeSnapshot(store, mark(40, 2));
      assert.deepEqual(store.latest(), mark(40, 2));
      // Behind the mark only the newest copy stays (a transfer may be sending it).
      assert.equal(store.read(snapshotMeta(20, 1, 500), 0, 1000).byteLength, 500);
      assert.throws(() => store.read(snapshotMeta(10, 1, 500), 0, 10), /no longer kept/);
      assert.equal(store.read(mark(40, 2), 0, 1000).byteLength, 0, "a mark holds no data");
      assert.throws(() => store.read(mark(30, 1), 0, 10), /no longer kept/, "an older mark is gone");
      // Copies after the mark (made for followers) are kept by the retained count…
      await writeSnapshot(store, snapshotMeta(50, 2, 500));
      await writeSnapshot(store, snapshotMeta(60, 2, 500));
      assert.equal(store.read(snapshotMeta(50, 2, 500), 0, 1000).byteLength, 500);
      assert.throws(() => store.read(snapshotMeta(20, 1, 500), 0, 10), /no longer kept/, "two copies kept");
      // …and make the mark useless: it is dropped.
      assert.deepEqual(store.latest(), snapshotMeta(60, 2, 500));
      assert.throws(() => store.read(mark(40, 2), 0, 10), /no longer kept/);
      await store.close();
    });
  });
}

test("file store: marks are files of their own that a reopen finds; a mark beside a copy of the same index wins", async () => {
  await withDirectory(async (directory) => {
    const store = new FileSnapshotStore(join(directory, "snapshots"));
    await store.open();
    await writeSnapshot(store, snapshotMeta(30, 2, 500));
    await writeSnapshot(store, mark(30, 2));
    assert.deepEqual(store.latest(), mark(30, 2));
    await store.close();
    assert.deepEqual((await readdir(join(directory, "snapshots"))).sort(), ["2-30.mark.snap", "2-30.snap"]);
    const reopened = new FileSnapshotStore(join(directory, "snapshots"));
    assert.deepEqual(await reopened.open(), mark(30, 2));
    assert.equal(reopened.read(snapshotMeta(30, 2, 500), 0, 1000).byteLength, 500);
    await reopened.close();
  });
});
