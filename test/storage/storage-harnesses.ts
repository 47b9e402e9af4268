/**
 * The harnesses the compliance suite and the model test run against: the file storage in a
 * temporary directory, and the in-memory storage over a MemoryDisk.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileStorage, type FileStorageOptions } from "../../src/adapters/storage/file-storage.ts";
import { MemoryDisk } from "../../src/adapters/storage/memory-storage.ts";
import type { RaftStorage } from "../../src/ports/storage.ts";
import type { StorageHarness, StorageLocation } from "./storage-compliance.ts";

/** A temporary data directory (removed by dispose). */
export async function temporaryDirectory(prefix = "conclave-storage-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
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
