import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryDisk } from "../../src/adapters/storage/memory-storage.ts";
import { reconcileHardState } from "../../src/adapters/storage/raft-storage.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { entryRange, snapshotMeta } from "./storage-compliance.ts";
import { fileHarness } from "./storage-harnesses.ts";

test("reconcile: commit is kept within [snapshot index, last index]", () => {
  const hardState = { term: 3, vote: "n2", commit: 40 };
  assert.deepEqual(reconcileHardState(hardState, null, entryRange(1, 30, 3)), { ...hardState, commit: 30 });
  assert.deepEqual(
    reconcileHardState({ ...hardState, commit: 5 }, snapshotMeta(20, 2, 1), entryRange(21, 30, 3)),
    {
      ...hardState,
      commit: 20,
    },
  );
  assert.equal(reconcileHardState(hardState, null, entryRange(1, 50, 3)), hardState);
});

test("reconcile: a log entry of a later term raises the term and clears the vote", () => {
  assert.deepEqual(reconcileHardState({ term: 2, vote: "n1", commit: 3 }, null, entryRange(1, 5, 4)), {
    term: 4,
    vote: null,
    commit: 3,
  });
  assert.deepEqual(reconcileHardState(null, null, entryRange(1, 2, 1)), { term: 1, vote: null, commit: 0 });
  assert.equal(reconcileHardState(null, null, []), null);
});

test("memory disk: an injected full disk fails one sync and keeps what was staged", async () => {
  const disk = new MemoryDisk();
  const storage = disk.storage();
  await storage.open();
  storage.append(entryRange(1, 3, 1));
  disk.injectFault("disk-full");
  await assert.rejects(storage.sync(), (error) => isConclaveError(error, "CONCLAVE_DISK_FULL"));
  await storage.sync();
  disk.crash();
  assert.deepEqual((await disk.storage().open()).entries, entryRange(1, 3, 1));
});

test("memory disk: an injected I/O error fails the storage for good", async () => {
  const disk = new MemoryDisk();
  const storage = disk.storage();
  await storage.open();
  storage.append(entryRange(1, 3, 1));
  disk.injectFault("io-error");
  await assert.rejects(storage.sync(), (error) => isConclaveError(error, "CONCLAVE_STORAGE_FAILED"));
  assert.throws(
    () => storage.append(entryRange(4, 4, 1)),
    (error) => isConclaveError(error, "CONCLAVE_STORAGE_FAILED"),
  );
  await assert.rejects(storage.sync(), (error) => isConclaveError(error, "CONCLAVE_STORAGE_FAILED"));
});

test("file storage: recovered entries hold their own bytes, not views of the whole segment file", async () => {
  const harness = fileHarness();
  const location = await harness.freshDirectory();
  try {
    const first = await location.open();
    first.storage.append(entryRange(1, 50, 1));
    await first.storage.sync();
    await first.storage.close();
    const { storage, recovered } = await location.open();
    assert.equal(recovered.entries.length, 50);
    for (const entry of recovered.entries) {
      if (entry.kind !== "command") continue;
      // msgpackr copies binary values out of the segment's bytes; a view would keep the whole
      // file in memory for as long as the entry lives.
      assert.equal(entry.data.buffer.byteLength, entry.data.byteLength, `entry ${entry.index}`);
    }
    assert.deepEqual(recovered.entries, entryRange(1, 50, 1));
    await storage.close();
  } finally {
    await location.dispose();
  }
});
