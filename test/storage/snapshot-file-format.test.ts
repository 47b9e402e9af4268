/**
 * The snapshot file formats and taking a file over as a snapshot (FileSnapshotStore.adopt):
 * version 1 files written by earlier releases still open; a file that already holds the data
 * becomes a snapshot without being copied or read into memory at once; damage anywhere is found.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FileSnapshotStore } from "../../src/adapters/storage/file-snapshot-store.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { readWholeSnapshot, snapshotBytes, snapshotMeta, writeSnapshot } from "./storage-compliance.ts";

const fixtures = join(import.meta.dirname, "fixtures", "snapshot-v1");

async function withDirectory(body: (directory: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "conclave-snapfmt-"));
  try {
    await body(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

async function openStore(directory: string): Promise<FileSnapshotStore> {
  const store = new FileSnapshotStore(join(directory, "snapshots"));
  await store.open();
  return store;
}

async function flipByte(path: string, offset: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset] = (bytes[offset] ?? 0) ^ 0xff;
  await writeFile(path, bytes);
}

const isCorrupt = (error: unknown) => isConclaveError(error, "CONCLAVE_STORAGE_CORRUPT");

test("a version 1 snapshot (description first) written by an earlier release still opens and reads", async () => {
  await withDirectory(async (directory) => {
    await mkdir(join(directory, "snapshots"));
    await copyFile(join(fixtures, "2-7.snap"), join(directory, "snapshots", "2-7.snap"));
    const store = await openStore(directory);
    const meta = {
      index: 7,
      term: 2,
      membership: { voters: ["n1", "n2", "n3"], learners: [] },
      sizeBytes: 3000,
    };
    assert.deepEqual(store.latest(), meta);
    assert.deepEqual(readWholeSnapshot(store, meta), snapshotBytes(3000, 3));
    await store.close();

    // Its CRC is still checked.
    await flipByte(join(directory, "snapshots", "2-7.snap"), 1500);
    await assert.rejects(openStore(directory), isCorrupt);
  });
});

test("a new snapshot puts its description after the data, and damage to either stops open", async () => {
  await withDirectory(async (directory) => {
    const store = await openStore(directory);
    const meta = snapshotMeta(15, 1, 4000);
    await writeSnapshot(store, meta);
    await store.close();
    const path = join(directory, "snapshots", "1-15.snap");
    const bytes = await readFile(path);
    assert.deepEqual(bytes.subarray(0, 4000), Buffer.from(snapshotBytes(4000, 15)), "the data comes first");
    assert.equal(bytes.subarray(bytes.length - 12, bytes.length - 4).toString("latin1"), "CNCLSNAP");

    const reopened = await openStore(directory);
    assert.deepEqual(reopened.latest(), meta);
    await reopened.close();
    for (const offset of [10, bytes.length - 30, bytes.length - 14, bytes.length - 1]) {
      await writeFile(path, bytes);
      await flipByte(path, offset);
      await assert.rejects(openStore(directory), isCorrupt, `a byte flipped at ${offset} of ${bytes.length}`);
    }
  });
});

test("adopt takes a data file over as a snapshot: moved, not copied, and it survives a reopen", async () => {
  await withDirectory(async (directory) => {
    const store = await openStore(directory);
    const meta = snapshotMeta(40, 3, 10_000);
    const source = join(directory, "copy.tmp");
    await writeFile(source, snapshotBytes(10_000, 40));
    const { ino } = await stat(source);
    await store.adopt(meta, source);
    assert.deepEqual(store.latest(), meta);
    await assert.rejects(stat(source), { code: "ENOENT" });
    assert.equal((await stat(join(directory, "snapshots", "3-40.snap"))).ino, ino, "the same file, renamed");
    assert.deepEqual(readWholeSnapshot(store, meta), snapshotBytes(10_000, 40));
    await store.close();

    const reopened = await openStore(directory);
    assert.deepEqual(reopened.latest(), meta);
    assert.deepEqual(readWholeSnapshot(reopened, meta), snapshotBytes(10_000, 40));
    await reopened.close();
  });
});

test("adopt refuses a file whose size is not the snapshot's, and leaves neither it nor a temporary file", async () => {
  await withDirectory(async (directory) => {
    const store = await openStore(directory);
    await writeSnapshot(store, snapshotMeta(5, 1, 100));
    const source = join(directory, "copy.tmp");
    await writeFile(source, snapshotBytes(999, 1));
    await assert.rejects(store.adopt(snapshotMeta(9, 1, 1000), source), (error) =>
      isConclaveError(error, "CONCLAVE_SNAPSHOT_SIZE_MISMATCH"),
    );
    assert.deepEqual(store.latest(), snapshotMeta(5, 1, 100), "the older snapshot stays the latest");
    await assert.rejects(stat(source), { code: "ENOENT" });
    assert.deepEqual(await readdir(join(directory, "snapshots")), ["1-5.snap"]);
    await store.close();
  });
});

test("adopting a 48 MB snapshot never holds it in memory (one 1 MiB buffer)", async () => {
  await withDirectory(async (directory) => {
    const store = await openStore(directory);
    const sizeBytes = 48 * 1024 * 1024;
    const source = join(directory, "copy.tmp");
    await writeFile(source, Buffer.alloc(sizeBytes, 7));
    globalThis.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }, 1);
    try {
      await store.adopt(snapshotMeta(100, 2, sizeBytes), source);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    // Streaming it through 1 MiB chunks, as before, held tens of MB of buffers waiting for GC.
    assert.ok(
      peak - before < 8 * 1024 * 1024,
      `ArrayBuffers grew by ${Math.round((peak - before) / 1024)} KiB`,
    );
    await store.close();
  });
});
