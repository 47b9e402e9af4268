import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryDisk } from "../../src/adapters/storage/memory-storage.ts";
import { reconcileHardState } from "../../src/adapters/storage/raft-storage.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { entryRange, snapshotMeta } from "./storage-compliance.ts";

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
