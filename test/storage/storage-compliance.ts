/**
 * The compliance suite every RaftStorage / SnapshotStore implementation passes (the file stores
 * and their in-memory twins). Each function registers tests against a harness that knows how to
 * make a fresh storage location, open a storage over it and crash it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isConclaveError } from "../../src/lib/errors.ts";
import type { RaftStorage, RecoveredState, SnapshotStore } from "../../src/ports/storage.ts";
import type { Entry, SnapshotMeta } from "../../src/raft/types.ts";

/** One storage location (a directory, or a memory disk). */
export interface StorageLocation {
  /** A new storage over this location, opened. Only one is open at a time. */
  open(): Promise<{ storage: RaftStorage; recovered: RecoveredState }>;
  /** Power cut: the open storage is dropped without syncing. */
  crash(storage: RaftStorage): Promise<void>;
  dispose(): Promise<void>;
}

export interface StorageHarness {
  readonly name: string;
  fresh(): Promise<StorageLocation>;
}

export function commandEntry(index: number, term: number, dataBytes = 3): Entry {
  const data = new Uint8Array(dataBytes);
  for (let position = 0; position < dataBytes; position += 1) data[position] = (index * 31 + position) & 0xff;
  return { kind: "command", index, term, data };
}

export function entryRange(fromIndex: number, toIndex: number, term: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = fromIndex; index <= toIndex; index += 1) entries.push(commandEntry(index, term));
  return entries;
}

export function snapshotMeta(index: number, term: number, sizeBytes: number): SnapshotMeta {
  return { index, term, sizeBytes, membership: { voters: ["n1", "n2", "n3"], learners: ["n4"] } };
}

export function snapshotBytes(sizeBytes: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(sizeBytes);
  for (let position = 0; position < sizeBytes; position += 1) bytes[position] = (position * 7 + seed) & 0xff;
  return bytes;
}

export async function writeSnapshot(
  store: SnapshotStore,
  meta: SnapshotMeta,
  chunkBytes = 1000,
): Promise<void> {
  const bytes = snapshotBytes(meta.sizeBytes, meta.index);
  const writer = await store.begin(meta);
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    await writer.write(bytes.subarray(offset, offset + chunkBytes));
  }
  await writer.finish();
}

export function readWholeSnapshot(store: SnapshotStore, meta: SnapshotMeta, chunkBytes = 777): Uint8Array {
  const bytes = new Uint8Array(meta.sizeBytes);
  let offset = 0;
  for (;;) {
    const chunk = store.read(meta, offset, chunkBytes);
    if (chunk.length === 0) break;
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  assert.equal(offset, meta.sizeBytes);
  return bytes;
}

async function withLocation(harness: StorageHarness, body: (location: StorageLocation) => Promise<void>) {
  const location = await harness.fresh();
  try {
    await body(location);
  } finally {
    await location.dispose();
  }
}

async function restart(location: StorageLocation, storage: RaftStorage) {
  await location.crash(storage);
  return location.open();
}

/** Log and hard-state behaviour through {@link RaftStorage}. */
export function raftStorageCompliance(harness: StorageHarness): void {
  describe(`RaftStorage compliance: ${harness.name}`, () => {
    test("a fresh location recovers nothing", () =>
      withLocation(harness, async (location) => {
        const { storage, recovered } = await location.open();
        assert.deepEqual(recovered, { hardState: null, snapshot: null, entries: [] });
        await location.crash(storage);
      }));

    test("what sync covered survives a crash, every entry kind and byte intact", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        const entries: Entry[] = [
          { kind: "noop", index: 1, term: 1 },
          { kind: "config", index: 2, term: 1, membership: { voters: ["a", "b"], learners: ["c"] } },
          { kind: "command", index: 3, term: 2, data: new Uint8Array([0, 255, 7]) },
          { kind: "command", index: 4, term: 2, data: new Uint8Array(0) },
        ];
        storage.append(entries);
        storage.setHardState({ term: 2, vote: "b", commit: 3 });
        await storage.sync();
        const again = await restart(location, storage);
        assert.deepEqual(again.recovered.entries, entries);
        assert.deepEqual(again.recovered.hardState, { term: 2, vote: "b", commit: 3 });
        await location.crash(again.storage);
      }));

    test("what was not synced is lost on a crash, and only that", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        storage.append(entryRange(1, 5, 1));
        storage.setHardState({ term: 1, vote: "a", commit: 2 });
        await storage.sync();
        storage.append(entryRange(6, 9, 1));
        storage.append(entryRange(3, 4, 2)); // conflicting overwrite, never synced
        storage.setHardState({ term: 2, vote: "b", commit: 4 });
        const again = await restart(location, storage);
        assert.deepEqual(again.recovered.entries, entryRange(1, 5, 1));
        assert.deepEqual(again.recovered.hardState, { term: 1, vote: "a", commit: 2 });
        await location.crash(again.storage);
      }));

    test("an append from a lower index replaces the conflicting suffix", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        storage.append(entryRange(1, 40, 1));
        await storage.sync();
        storage.append(entryRange(11, 15, 2));
        await storage.sync();
        storage.append(entryRange(16, 18, 2));
        await storage.sync();
        const again = await restart(location, storage);
        assert.deepEqual(again.recovered.entries, [...entryRange(1, 10, 1), ...entryRange(11, 18, 2)]);
        await location.crash(again.storage);
      }));

    test("compaction after a snapshot keeps every entry after it", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        for (let batch = 0; batch < 10; batch += 1) {
          storage.append(entryRange(batch * 20 + 1, batch * 20 + 20, 1));
          await storage.sync();
        }
        const meta = snapshotMeta(150, 1, 5000);
        await writeSnapshot(storage.snapshots, meta);
        await storage.compact(150);
        storage.append(entryRange(201, 205, 1));
        await storage.sync();
        const again = await restart(location, storage);
        assert.deepEqual(again.recovered.snapshot, meta);
        assert.deepEqual(again.recovered.entries, entryRange(151, 205, 1));
        assert.deepEqual(readWholeSnapshot(again.storage.snapshots, meta), snapshotBytes(5000, 150));
        await location.crash(again.storage);
      }));

    test("a snapshot past the log replaces it; appends continue after the snapshot", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        storage.append(entryRange(1, 30, 1));
        await storage.sync();
        const meta = snapshotMeta(100, 3, 10);
        await writeSnapshot(storage.snapshots, meta);
        await storage.reset(101);
        storage.append(entryRange(101, 103, 3));
        storage.setHardState({ term: 3, vote: null, commit: 100 });
        await storage.sync();
        const again = await restart(location, storage);
        assert.deepEqual(again.recovered.entries, entryRange(101, 103, 3));
        assert.deepEqual(again.recovered.hardState, { term: 3, vote: null, commit: 100 });
        again.storage.append(entryRange(104, 104, 3));
        await again.storage.sync();
        await location.crash(again.storage);
      }));

    test("a log from another history than the snapshot is discarded at open", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        storage.append(entryRange(1, 20, 1));
        await storage.sync();
        // The leader's snapshot at 10 has term 2; our entry 10 has term 1 (crash before reset).
        await writeSnapshot(storage.snapshots, snapshotMeta(10, 2, 10));
        const again = await restart(location, storage);
        assert.deepEqual(again.recovered.entries, []);
        again.storage.append(entryRange(11, 12, 2));
        await again.storage.sync();
        const third = await restart(location, again.storage);
        assert.deepEqual(third.recovered.entries, entryRange(11, 12, 2));
        await location.crash(third.storage);
      }));

    test("appends that break the log's shape are refused before anything is written", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        storage.append(entryRange(1, 3, 2));
        assert.throws(() => storage.append(entryRange(5, 6, 2)), /gap/);
        assert.throws(() => storage.append(entryRange(4, 4, 1)), /term/);
        assert.throws(() => storage.append([commandEntry(4, 2), commandEntry(6, 2)]), /consecutive|expected/);
        await storage.sync();
        const again = await restart(location, storage);
        assert.deepEqual(again.recovered.entries, entryRange(1, 3, 2));
        await location.crash(again.storage);
      }));
  });
}

/** Snapshot behaviour through {@link SnapshotStore} (reached via a RaftStorage). */
export function snapshotStoreCompliance(harness: StorageHarness): void {
  describe(`SnapshotStore compliance: ${harness.name}`, () => {
    test("a snapshot written in chunks reads back byte for byte, in any chunk size", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        const meta = snapshotMeta(7, 2, 10_000);
        await writeSnapshot(storage.snapshots, meta, 333);
        assert.deepEqual(storage.snapshots.latest(), meta);
        assert.deepEqual(readWholeSnapshot(storage.snapshots, meta, 4096), snapshotBytes(10_000, 7));
        assert.equal(storage.snapshots.read(meta, 10_000, 100).length, 0);
        assert.deepEqual(storage.snapshots.read(meta, 9_990, 100), snapshotBytes(10_000, 7).subarray(9_990));
        await location.crash(storage);
      }));

    test("an unfinished snapshot is never visible, before or after a crash", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        await writeSnapshot(storage.snapshots, snapshotMeta(5, 1, 100));
        const writer = await storage.snapshots.begin(snapshotMeta(9, 1, 100));
        await writer.write(new Uint8Array(60));
        assert.equal(storage.snapshots.latest()?.index, 5);
        const again = await restart(location, storage);
        assert.equal(again.recovered.snapshot?.index, 5);
        assert.equal(again.storage.snapshots.latest()?.index, 5);
        await location.crash(again.storage);
      }));

    test("a snapshot of the wrong size is refused and discarded; abort discards too", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        const short = await storage.snapshots.begin(snapshotMeta(3, 1, 100));
        await short.write(new Uint8Array(50));
        await assert.rejects(short.finish(), (error) =>
          isConclaveError(error, "CONCLAVE_SNAPSHOT_SIZE_MISMATCH"),
        );
        const long = await storage.snapshots.begin(snapshotMeta(4, 1, 10));
        await assert.rejects(long.write(new Uint8Array(11)), (error) =>
          isConclaveError(error, "CONCLAVE_SNAPSHOT_SIZE_MISMATCH"),
        );
        const aborted = await storage.snapshots.begin(snapshotMeta(6, 1, 10));
        await aborted.write(new Uint8Array(10));
        await aborted.abort();
        await aborted.abort();
        assert.equal(storage.snapshots.latest(), null);
        const again = await restart(location, storage);
        assert.equal(again.recovered.snapshot, null);
        await location.crash(again.storage);
      }));

    test("keeps the newest two snapshots; an older one reads as not found", () =>
      withLocation(harness, async (location) => {
        const { storage } = await location.open();
        const metas = [snapshotMeta(10, 1, 50), snapshotMeta(20, 1, 60), snapshotMeta(30, 2, 70)];
        for (const meta of metas) await writeSnapshot(storage.snapshots, meta);
        assert.deepEqual(storage.snapshots.latest(), metas[2]);
        assert.throws(
          () => storage.snapshots.read(snapshotMeta(10, 1, 50), 0, 10),
          (error) => isConclaveError(error, "CONCLAVE_SNAPSHOT_NOT_FOUND"),
        );
        assert.deepEqual(
          readWholeSnapshot(storage.snapshots, snapshotMeta(20, 1, 60)),
          snapshotBytes(60, 20),
        );
        const again = await restart(location, storage);
        assert.deepEqual(again.recovered.snapshot, metas[2]);
        assert.deepEqual(
          readWholeSnapshot(again.storage.snapshots, snapshotMeta(20, 1, 60)),
          snapshotBytes(60, 20),
        );
        await location.crash(again.storage);
      }));
  });
}
