/**
 * The in-memory twin of the snapshot directory. A snapshot is visible only once `finish`
 * resolves; `crash()` discards every unfinished write, as a crash leaves only `.tmp` files.
 */
import { assert } from "../../lib/assert.ts";
import { ConclaveError } from "../../lib/errors.ts";
import type { SnapshotStore, SnapshotWriter } from "../../ports/storage.ts";
import type { SnapshotMeta } from "../../raft/types.ts";
import { compareSnapshots, isSameSnapshot, snapshotsToDrop } from "./snapshot-retention.ts";

interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

function sizeMismatch(meta: SnapshotMeta, bytes: number): ConclaveError {
  return new ConclaveError(
    "CONCLAVE_SNAPSHOT_SIZE_MISMATCH",
    `Snapshot ${meta.term}-${meta.index} received ${bytes} bytes but its metadata says ${meta.sizeBytes}; ` +
      "the transfer was discarded and must restart from offset 0.",
    { index: meta.index, term: meta.term, bytes, sizeBytes: meta.sizeBytes },
  );
}

/** {@link SnapshotStore} in memory, keeping the newest `retainCount` snapshots. */
export class MemorySnapshotStore implements SnapshotStore {
  readonly #retainCount: number;
  /** Oldest first. */
  #retained: StoredSnapshot[] = [];
  /** Bumped by crash(): writers from before it can no longer publish. */
  #generation = 0;
  /** Writes and finishes that find the disk full before it has room again (injectDiskFull). */
  #fullFor = 0;

  constructor(options: { retainCount?: number } = {}) {
    this.#retainCount = options.retainCount ?? 2;
    assert(this.#retainCount >= 1, "retainCount must be at least 1");
  }

  async open(): Promise<SnapshotMeta | null> {
    return this.latest();
  }

  async begin(meta: SnapshotMeta): Promise<SnapshotWriter> {
    const generation = this.#generation;
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    let state: "open" | "done" = "open";
    return {
      write: async (chunk) => {
        assert(state === "open", "snapshot writer is not open");
        this.#takeDiskFull(meta);
        if (bytes + chunk.length > meta.sizeBytes) {
          state = "done";
          throw sizeMismatch(meta, bytes + chunk.length);
        }
        chunks.push(chunk.slice());
        bytes += chunk.length;
      },
      finish: async () => {
        assert(state === "open", "snapshot writer is not open");
        this.#takeDiskFull(meta);
        state = "done";
        if (bytes !== meta.sizeBytes) throw sizeMismatch(meta, bytes);
        if (generation !== this.#generation) return; // crashed meanwhile: it never existed
        const data = new Uint8Array(bytes);
        let offset = 0;
        for (const chunk of chunks) {
          data.set(chunk, offset);
          offset += chunk.length;
        }
        this.#publish({ meta, data });
      },
      abort: async () => {
        state = "done";
      },
    };
  }

  /** The next `operations` snapshot writes or finishes find the disk full (and keep nothing). */
  injectDiskFull(operations: number): void {
    this.#fullFor = operations;
  }

  #takeDiskFull(meta: SnapshotMeta): void {
    if (this.#fullFor === 0) return;
    this.#fullFor -= 1;
    throw new ConclaveError(
      "CONCLAVE_DISK_FULL",
      `The disk holding the memory snapshots is full (injected) while writing snapshot ${meta.term}-${meta.index}; free space and the node continues.`,
      { store: "memory snapshots" },
    );
  }

  #publish(snapshot: StoredSnapshot): void {
    this.#retained = this.#retained.filter((kept) => !isSameSnapshot(kept.meta, snapshot.meta));
    this.#retained.push(snapshot);
    this.#retained.sort((a, b) => compareSnapshots(a.meta, b.meta));
    const dropped = new Set(snapshotsToDrop(this.#retained, this.#retainCount));
    this.#retained = this.#retained.filter((kept) => !dropped.has(kept));
  }

  read(meta: SnapshotMeta, offset: number, bytesMax: number): Uint8Array {
    const snapshot = this.#retained.find((kept) => isSameSnapshot(kept.meta, meta));
    if (snapshot === undefined) {
      throw new ConclaveError(
        "CONCLAVE_SNAPSHOT_NOT_FOUND",
        `Snapshot ${meta.term}-${meta.index} is no longer kept (a newer one replaced it); send the latest instead.`,
        { index: meta.index, term: meta.term },
      );
    }
    assert(offset >= 0 && offset <= snapshot.data.length, () => `snapshot read at ${offset} is out of range`);
    return snapshot.data.slice(offset, offset + Math.max(0, bytesMax));
  }

  latest(): SnapshotMeta | null {
    return this.#retained.at(-1)?.meta ?? null;
  }

  async close(): Promise<void> {
    this.crash();
  }

  /** Discards unfinished writes; finished snapshots stay. */
  crash(): void {
    this.#generation += 1;
  }
}
