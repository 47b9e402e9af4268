/**
 * Snapshots as files in one directory (see snapshot-file.ts for the format). Keeps the newest
 * `retainCount` copies (by index) and the newest mark (snapshot-retention.ts), and holds a read descriptor open on each, so that `read`
 * is a synchronous `readSync` (the consensus core reads chunks while building messages).
 */
import { closeSync, openSync, readSync } from "node:fs";
import { mkdir, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { assert } from "../../lib/assert.ts";
import { ConclaveError } from "../../lib/errors.ts";
import type { SnapshotStore, SnapshotWriter } from "../../ports/storage.ts";
import type { SnapshotMeta } from "../../raft/types.ts";
import { DiskGuard } from "./disk-guard.ts";
import {
  FileSnapshotWriter,
  parseSnapshotFileName,
  type SnapshotFile,
  verifySnapshotFile,
} from "./snapshot-file.ts";
import { compareSnapshots, isSameSnapshot, snapshotsToDrop } from "./snapshot-retention.ts";

export interface FileSnapshotStoreOptions {
  /** How many of the newest snapshots to keep (1 or more). */
  readonly retainCount?: number;
}

interface RetainedSnapshot extends SnapshotFile {
  readonly fd: number;
}

/** {@link SnapshotStore} in `directory`. */
export class FileSnapshotStore implements SnapshotStore {
  readonly directory: string;
  readonly #retainCount: number;
  readonly #guard: DiskGuard;
  /** Oldest first. */
  #retained: RetainedSnapshot[] = [];
  #opened = false;
  /** Writers not yet finished or aborted, so that close() can release their files. */
  readonly #writers = new Set<FileSnapshotWriter>();

  constructor(directory: string, options: FileSnapshotStoreOptions = {}) {
    this.directory = directory;
    this.#retainCount = options.retainCount ?? 2;
    assert(this.#retainCount >= 1, "retainCount must be at least 1");
    this.#guard = new DiskGuard(directory);
  }

  async open(): Promise<SnapshotMeta | null> {
    assert(!this.#opened, "FileSnapshotStore.open called twice");
    await mkdir(this.directory, { recursive: true });
    const found: SnapshotFile[] = [];
    for (const name of await readdir(this.directory)) {
      const path = join(this.directory, name);
      if (name.endsWith(".snap.tmp")) {
        // An unfinished write from before a crash: never visible, now gone.
        await unlink(path);
        continue;
      }
      const parsed = parseSnapshotFileName(name);
      if (parsed === null) continue;
      const file = await verifySnapshotFile(path);
      if (
        file.meta.index !== parsed.index ||
        file.meta.term !== parsed.term ||
        (file.meta.inStateMachine === true) !== parsed.mark
      ) {
        throw new ConclaveError(
          "CONCLAVE_STORAGE_CORRUPT",
          `${path} holds snapshot ${file.meta.term}-${file.meta.index}, not the one its name says. ` +
            "Restore this member from the others: wipe its data directory and let it rejoin.",
          { file: path },
        );
      }
      found.push(file);
    }
    found.sort((a, b) => compareSnapshots(a.meta, b.meta));
    for (const file of found) this.#retained.push({ ...file, fd: openSync(file.path, "r") });
    await this.#dropOld();
    this.#opened = true;
    return this.latest();
  }

  async begin(meta: SnapshotMeta): Promise<SnapshotWriter> {
    const writer = this.#newWriter(meta);
    await writer.start();
    return writer;
  }

  /**
   * Stores the file at `path` (exactly the snapshot's data) as snapshot `meta` without copying
   * it: it is moved here, its description appended, and it is fsynced and published.
   */
  async adopt(meta: SnapshotMeta, path: string): Promise<void> {
    const writer = this.#newWriter(meta);
    try {
      await writer.startFromFile(path);
      await writer.finish();
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  #newWriter(meta: SnapshotMeta): FileSnapshotWriter {
    this.#guard.assertUsable();
    assert(this.#opened, "FileSnapshotStore used before open");
    const writer = new FileSnapshotWriter(
      meta,
      this.directory,
      this.#guard,
      (file) => {
        this.#writers.delete(writer);
        return this.#publish(file);
      },
      () => this.#writers.delete(writer),
    );
    this.#writers.add(writer);
    return writer;
  }

  async #publish(file: SnapshotFile): Promise<void> {
    const replaced = this.#retained.findIndex((kept) => isSameSnapshot(kept.meta, file.meta));
    if (replaced >= 0) {
      const [old] = this.#retained.splice(replaced, 1);
      if (old !== undefined) closeSync(old.fd);
    }
    this.#retained.push({ ...file, fd: openSync(file.path, "r") });
    this.#retained.sort((a, b) => compareSnapshots(a.meta, b.meta));
    await this.#dropOld();
  }

  /** Deletes copies beyond the retained count and marks that are not the newest snapshot. */
  async #dropOld(): Promise<void> {
    const dropped = snapshotsToDrop(this.#retained, this.#retainCount);
    this.#retained = this.#retained.filter((kept) => !dropped.includes(kept));
    for (const snapshot of dropped) {
      closeSync(snapshot.fd);
      await unlink(snapshot.path);
    }
  }

  read(meta: SnapshotMeta, offset: number, bytesMax: number): Uint8Array {
    this.#guard.assertUsable();
    const snapshot = this.#retained.find((kept) => isSameSnapshot(kept.meta, meta));
    if (snapshot === undefined) {
      throw new ConclaveError(
        "CONCLAVE_SNAPSHOT_NOT_FOUND",
        `Snapshot ${meta.term}-${meta.index} is no longer kept (a newer one replaced it); send the latest instead.`,
        { index: meta.index, term: meta.term },
      );
    }
    assert(
      offset >= 0 && offset <= snapshot.meta.sizeBytes,
      () => `snapshot read at ${offset} is out of range`,
    );
    const length = Math.max(0, Math.min(bytesMax, snapshot.meta.sizeBytes - offset));
    const chunk = new Uint8Array(length);
    let done = 0;
    try {
      while (done < length) {
        const bytesRead = readSync(
          snapshot.fd,
          chunk,
          done,
          length - done,
          snapshot.dataOffsetBytes + offset + done,
        );
        assert(bytesRead > 0, () => `${snapshot.path} ended early`);
        done += bytesRead;
      }
    } catch (error) {
      if (error instanceof Error && error.name === "AssertionFailure") throw error;
      throw this.#guard.fail(error, `reading ${snapshot.path}`);
    }
    return chunk;
  }

  latest(): SnapshotMeta | null {
    return this.#retained.at(-1)?.meta ?? null;
  }

  async close(): Promise<void> {
    // An unfinished snapshot is discarded, as a crash would (its .tmp file is removed).
    for (const writer of [...this.#writers]) await writer.abort();
    for (const snapshot of this.#retained) closeSync(snapshot.fd);
    this.#retained = [];
  }
}
