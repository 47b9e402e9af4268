/**
 * The harnesses the compliance suite and the model test run against: the file storage in a
 * temporary directory, and the in-memory storage over a MemoryDisk.
 */
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileStorage, type FileStorageOptions } from "../../src/adapters/storage/file-storage.ts";
import { MemoryDisk } from "../../src/adapters/storage/memory-storage.ts";
import { RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from "../../src/adapters/storage/segment-format.ts";
import type { RaftStorage } from "../../src/ports/storage.ts";
import type { StorageHarness, StorageLocation } from "./storage-compliance.ts";

/** A temporary data directory (removed by dispose). */
export async function temporaryDirectory(prefix = "conclave-storage-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Byte offsets where each record of a segment file starts, and where the records end: the
 * active segment's file is pre-sized, so its size says nothing about what was written. Stops at
 * a zero length (the unwritten zeros) or at a record that runs past the end of the file.
 */
export async function segmentRecords(path: string): Promise<{ offsets: number[]; endBytes: number }> {
  const bytes = await readFile(path);
  const offsets: number[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  while (offset + RECORD_HEADER_BYTES <= bytes.length) {
    const bodyBytes = bytes.readUInt32LE(offset);
    if (bodyBytes === 0) break;
    offsets.push(offset);
    offset += RECORD_HEADER_BYTES + bodyBytes;
  }
  return { offsets, endBytes: Math.min(offset, bytes.length) };
}

/**
 * What a power cut during a write to a pre-sized segment leaves: the bytes from `cutBytes` to
 * `endBytes` never reached the disk, so they read as zeros, and the file keeps its size.
 */
export async function tearWrite(path: string, cutBytes: number, endBytes: number): Promise<void> {
  if (endBytes <= cutBytes) return;
  const handle = await open(path, "r+");
  try {
    await handle.write(Buffer.alloc(endBytes - cutBytes), 0, endBytes - cutBytes, cutBytes);
  } finally {
    await handle.close();
  }
}

/** File storage; a crash is a close without sync (what a killed process leaves). */
export function fileHarness(options: FileStorageOptions = {}): StorageHarness & {
  freshDirectory(): Promise<StorageLocation & { directory: string }>;
} {
  const freshDirectory = async () => {
    const directory = await temporaryDirectory();
    return {
      directory,
      async open() {
        const storage = createFileStorage(directory, options);
        return { storage, recovered: await storage.open() };
      },
      async crash(storage: RaftStorage) {
        await storage.close();
      },
      async dispose() {
        await rm(directory, { recursive: true, force: true });
      },
    };
  };
  return { name: `file storage ${JSON.stringify(options)}`, fresh: freshDirectory, freshDirectory };
}

/** In-memory storage; a crash drops everything not synced. */
export const memoryHarness: StorageHarness = {
  name: "memory storage",
  async fresh(): Promise<StorageLocation> {
    const disk = new MemoryDisk();
    return {
      async open() {
        const storage = disk.storage();
        return { storage, recovered: await storage.open() };
      },
      async crash() {
        disk.crash();
      },
      async dispose() {},
    };
  },
};
