/**
 * Damaged files at open: damage in the middle of the log (or in a hard-state file or snapshot
 * with no good copy) stops the node with CONCLAVE_STORAGE_CORRUPT naming file and offset; a
 * damaged or cut last record is a torn write, cut off so the node starts.
 */
import assert from "node:assert/strict";
import { readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { createFileStorage, type FileStorageOptions } from "../../src/adapters/storage/file-storage.ts";
import { type ConclaveError, isConclaveError } from "../../src/lib/errors.ts";
import type { RecoveredState } from "../../src/ports/storage.ts";
import { entryRange, snapshotMeta, writeSnapshot } from "./storage-compliance.ts";
import { segmentRecords, tearWrite, temporaryDirectory } from "./storage-harnesses.ts";

const RECORD_HEADER_BYTES = 12;

/** A data directory holding entries 1..count (synced in batches of 10), closed. */
async function writtenLog(count: number, options: FileStorageOptions = {}): Promise<string> {
  const directory = await temporaryDirectory();
  const storage = createFileStorage(directory, options);
  await storage.open();
  for (let first = 1; first <= count; first += 10) {
    storage.append(entryRange(first, Math.min(count, first + 9), 1));
    storage.setHardState({ term: 1, vote: "n1", commit: Math.min(count, first + 9) });
    await storage.sync();
  }
  await storage.close();
  return directory;
}

async function segmentPaths(directory: string): Promise<string[]> {
  const names = (await readdir(join(directory, "log"))).sort();
  return names.map((name) => join(directory, "log", name));
}

/** Byte offsets where each record of a segment starts. */
async function recordOffsets(path: string): Promise<number[]> {
  return (await segmentRecords(path)).offsets;
}

async function flipByte(path: string, offset: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset] = (bytes[offset] ?? 0) ^ 0x01;
  await writeFile(path, bytes);
}

async function openDirectory(directory: string, options: FileStorageOptions = {}): Promise<RecoveredState> {
  const storage = createFileStorage(directory, options);
  try {
    return await storage.open();
  } finally {
    await storage.close();
  }
}

function expectCorrupt(file: string, offset: number | null) {
  return (error: unknown) => {
    assert.ok(isConclaveError(error, "CONCLAVE_STORAGE_CORRUPT"), String(error));
    const details = (error as ConclaveError).details;
    assert.equal(details.file, file);
    if (offset !== null) assert.equal(details.offsetBytes, offset);
    assert.match((error as Error).message, new RegExp(`${file}.*byte offset ${details.offsetBytes}`));
    assert.match((error as Error).message, /wipe its data directory/);
    return true;
  };
}

test("a flipped byte in the middle of a segment stops open, naming the file and offset", async () => {
  const directory = await writtenLog(50);
  try {
    const [segment] = await segmentPaths(directory);
    assert.ok(segment !== undefined);
    const offsets = await recordOffsets(segment);
    const damaged = offsets[25] ?? 0;
    await flipByte(segment, damaged + RECORD_HEADER_BYTES + 3);
    await assert.rejects(openDirectory(directory), expectCorrupt(segment, damaged));
    // A damaged record header (its length) is caught by the header checksum.
    await flipByte(segment, damaged + RECORD_HEADER_BYTES + 3);
    await flipByte(segment, (offsets[10] ?? 0) + 1);
    await assert.rejects(openDirectory(directory), expectCorrupt(segment, offsets[10] ?? 0));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test("a damaged last record is a torn write: it is cut off, open succeeds, and appends continue", async () => {
  for (const [where, offsetInRecord] of [
    ["body", RECORD_HEADER_BYTES + 2],
    ["length", 0],
    ["checksum", 5],
  ] as const) {
    const directory = await writtenLog(50);
    try {
      const [segment] = await segmentPaths(directory);
      assert.ok(segment !== undefined);
      const lastRecord = (await recordOffsets(segment)).at(-1) ?? 0;
      await flipByte(segment, lastRecord + offsetInRecord);
      const recovered = await openDirectory(directory);
      assert.deepEqual(recovered.entries, entryRange(1, 49, 1), `damaged ${where}`);
      assert.equal((await stat(segment)).size, lastRecord, `the torn tail was not cut (${where})`);
      // The hard state said commit 50; the log ends at 49, so commit is lowered to match.
      assert.equal(recovered.hardState?.commit, 49);
      const storage = createFileStorage(directory);
      await storage.open();
      storage.append(entryRange(50, 51, 2));
      await storage.sync();
      await storage.close();
      assert.deepEqual((await openDirectory(directory)).entries, [
        ...entryRange(1, 49, 1),
        ...entryRange(50, 51, 2),
      ]);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }
});

test("a write cut anywhere inside the last record is cut back to the last whole record", async () => {
  for (const how of ["the file ends at the cut", "zeros after the cut (pre-sized file)"]) {
    const directory = await writtenLog(30);
    try {
      const [segment] = await segmentPaths(directory);
      assert.ok(segment !== undefined);
      const { offsets, endBytes: end } = await segmentRecords(segment);
      const lastRecord = offsets.at(-1) ?? 0;
      assert.ok((await stat(segment)).size > end, "the active segment is pre-sized");
      const written = await readFile(segment);
      for (const cut of [end - 1, lastRecord + RECORD_HEADER_BYTES, lastRecord + 5]) {
        await writeFile(segment, written);
        if (how === "the file ends at the cut") await truncate(segment, cut);
        else await tearWrite(segment, cut, end);
        assert.deepEqual((await openDirectory(directory)).entries, entryRange(1, 29, 1), `${how}, at ${cut}`);
        assert.equal((await stat(segment)).size, lastRecord, `${how}, at ${cut}`);
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }
});

/** 60 entries in 300-byte segments: the directory, its segment files and the first one. */
async function rolledLog() {
  const options = { segmentBytesMax: 300 };
  const directory = await writtenLog(60, options);
  const segments = await segmentPaths(directory);
  assert.ok(segments.length >= 3, "expected several segments");
  return { options, directory, segments, first: segments[0] ?? "" };
}

test("damage at the end of a segment that is not the last is corruption, not a torn write", async () => {
  const { options, directory, segments, first } = await rolledLog();
  try {
    const lastRecord = (await recordOffsets(first)).at(-1) ?? 0;
    await flipByte(first, lastRecord + RECORD_HEADER_BYTES + 1);
    await assert.rejects(openDirectory(directory, options), expectCorrupt(first, lastRecord));
    // A missing middle segment is a gap: corruption too.
    await flipByte(first, lastRecord + RECORD_HEADER_BYTES + 1);
    await rm(segments[1] ?? "");
    await assert.rejects(openDirectory(directory, options), expectCorrupt(segments[2] ?? "", 0));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test("a hard-state slot that is damaged falls back to the other; both damaged is corruption", async () => {
  const directory = await writtenLog(30);
  try {
    const path = join(directory, "hardstate");
    const bytes = await readFile(path);
    const newest = bytes.readBigUInt64LE(8) > bytes.readBigUInt64LE(512 + 8) ? 0 : 1;
    await flipByte(path, newest * 512 + 22);
    assert.deepEqual((await openDirectory(directory)).hardState, { term: 1, vote: "n1", commit: 20 });
    await flipByte(path, (1 - newest) * 512 + 22);
    await assert.rejects(openDirectory(directory), expectCorrupt(path, 0));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test("a damaged snapshot file stops open", async () => {
  const directory = await writtenLog(20);
  try {
    const storage = createFileStorage(directory);
    await storage.open();
    await writeSnapshot(storage.snapshots, snapshotMeta(15, 1, 4000));
    await storage.close();
    const path = join(directory, "snapshots", "1-15.snap");
    await flipByte(path, 2000);
    await assert.rejects(openDirectory(directory), (error) =>
      isConclaveError(error, "CONCLAVE_STORAGE_CORRUPT"),
    );
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test("the active segment is pre-sized with zeros: reopened, it reads to its last record and appends right after it", async () => {
  const directory = await writtenLog(20);
  try {
    const [segment] = await segmentPaths(directory);
    assert.ok(segment !== undefined);
    const written = await segmentRecords(segment);
    assert.equal(written.offsets.length, 20);
    const { size } = await stat(segment);
    assert.ok(
      size > written.endBytes && size >= 1024 * 1024,
      `pre-sized: ${size} bytes for ${written.endBytes} of records`,
    );
    const storage = createFileStorage(directory);
    assert.deepEqual((await storage.open()).entries, entryRange(1, 20, 1));
    storage.append(entryRange(21, 25, 1));
    await storage.sync();
    await storage.close();
    const after = await segmentRecords(segment);
    assert.equal(after.offsets.length, 25, "the new records follow the old ones, no zeros between");
    assert.deepEqual((await openDirectory(directory)).entries, entryRange(1, 25, 1));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test("a rolled segment is trimmed to its records; one left with zeros by a crash still reads", async () => {
  const { options, directory, first } = await rolledLog();
  try {
    assert.equal((await stat(first)).size, (await segmentRecords(first)).endBytes);
    await truncate(first, (await stat(first)).size + 4096); // a crash between the roll and the trim
    assert.deepEqual((await openDirectory(directory, options)).entries, entryRange(1, 60, 1));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
