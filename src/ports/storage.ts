/**
 * Durable storage of a Raft node: the log, the hard state and snapshots.
 *
 * The consensus core is pure; the runtime persists what it asks before anything is sent or
 * acknowledged. Storage is split by access pattern (as hashicorp/raft does): an append-mostly
 * {@link LogStore}, a tiny {@link StableStore} for the hard state and a chunked
 * {@link SnapshotStore}. {@link RaftStorage} groups the three so that one `sync()` covers a
 * whole Ready batch (group commit).
 *
 * ## Ordering and durability contract
 *
 * - `append` and `setHardState` only stage changes in memory; they never touch the disk and
 *   never fail for disk reasons. `sync()` writes everything staged since the last sync and makes
 *   it durable with one fsync per file touched. Only after `sync()` resolves may the runtime
 *   send messages or acknowledge anything that depends on the staged changes.
 * - The runtime persists one batch at a time: `append`, `setHardState` and `compact` are not
 *   called while a `sync` is in flight (an assertion catches it); `sync`, `compact` and `reset`
 *   calls queue and run one at a time.
 * - After a crash, `open()` recovers **at least** everything covered by the last `sync()` that
 *   resolved. Of a sync that was interrupted, any part may or may not survive, with two
 *   guarantees: the log recovered is always a prefix of the log as it was after that sync
 *   (never a hole, never reordered, never a corrupt entry), and the hard state is either the one
 *   before or the one after that sync. Nothing staged after the last started sync survives.
 * - A log that cannot be trusted (a bad checksum anywhere but in the torn tail a crash can
 *   leave) is never served: `open()` throws `CONCLAVE_STORAGE_CORRUPT` naming the file and
 *   byte offset.
 *
 * ## Failures
 *
 * - `CONCLAVE_STORAGE_FAILED`: a write or fsync failed (EIO and the like). The store is
 *   failed for good: every later call throws the same code. An fsync is never retried (after a
 *   failed fsync the kernel may have dropped the dirty pages: a retry could "succeed" on data
 *   that is gone). The runtime must stop the node.
 * - `CONCLAVE_DISK_FULL`: the disk is full (ENOSPC/EDQUOT). Nothing previously synced is lost,
 *   the partial write is cut back, and everything staged stays staged: a later `sync()`, once
 *   space is freed, writes it.
 *
 * @example
 * ```ts
 * const { hardState, snapshot, entries } = await storage.open();
 * // each loop turn:
 * storage.append(ready.entries);
 * if (ready.hardState) storage.setHardState(ready.hardState);
 * await storage.sync(); // one fsync per file touched
 * send(ready.messages);
 * ```
 */
import type { Entry, HardState, SnapshotMeta } from "../raft/types.ts";

/** What a log store found on disk. */
export interface LogRecovery {
  /**
   * The entries held, consecutive and in order. A store may still hold some entries at or below
   * the last `compact` index (a segment straddling it stays); callers drop what a snapshot covers.
   */
  readonly entries: Entry[];
}

/** The log of a node: appended in batches, truncated on conflict, compacted after snapshots. */
export interface LogStore {
  /** Reads and verifies the log. Must be called once, before anything else. */
  open(): Promise<LogRecovery>;
  /**
   * Stages `entries` (consecutive indexes, non-decreasing terms). When the first index is at or
   * below the last index, the log is first truncated from that index (conflict resolution).
   * The first index must be at most `lastIndex() + 1`.
   */
  append(entries: readonly Entry[]): void;
  /** The last index, staged entries included; the compaction point when the log is empty. */
  lastIndex(): number;
  /** Writes what is staged and makes it durable. Rejects with the codes above. */
  sync(): Promise<void>;
  /**
   * Drops entries at or below `index` (a snapshot covers them). May keep some of them on disk
   * (whole files only are deleted). When `index` is at or past the last index, the log becomes
   * empty and the next append must start at `index + 1`.
   */
  compact(index: number): Promise<void>;
  /** Drops every entry; the next append must start at `nextIndex`. Durable at the next sync. */
  reset(nextIndex: number): Promise<void>;
  /** Closes files. Does not sync: staged changes are dropped, as by a crash. */
  close(): Promise<void>;
}

/** Holds the hard state (term, vote, commit). Bounded size. */
export interface StableStore {
  /** Reads the last durable hard state, or null on a fresh node. Call once, first. */
  open(): Promise<HardState | null>;
  /** Stages `hardState`; only the last one staged before a sync is written. */
  setHardState(hardState: HardState): void;
  /** Writes the staged hard state, if any, and makes it durable. */
  sync(): Promise<void>;
  /** Closes files without syncing. */
  close(): Promise<void>;
}

/** Writes one snapshot in chunks. Nothing is visible until `finish` resolves. */
export interface SnapshotWriter {
  /**
   * Appends the next chunk. A full disk rejects with `CONCLAVE_DISK_FULL` and keeps nothing of
   * the chunk: the writer stays open, and the same chunk may be written again once there is room.
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Checks that exactly `meta.sizeBytes` bytes were written, makes the snapshot durable and
   * visible (it becomes `latest()` if it is the newest), then deletes what the store no longer
   * keeps (adapters/storage/snapshot-retention.ts: copies beyond the retained count, marks that
   * are not the newest snapshot). A full
   * disk rejects with `CONCLAVE_DISK_FULL`, and `finish` may then be called again.
   */
  finish(): Promise<void>;
  /** Discards what was written. Safe to call more than once, and after a failed write. */
  abort(): Promise<void>;
}

/**
 * Keeps the newest copy or two and the newest mark (`SnapshotMeta.inStateMachine`: a snapshot
 * whose state the persistent state machine holds; no data). Never exposes a half-written one,
 * even after a crash.
 */
export interface SnapshotStore {
  /** Finds and verifies the retained snapshots, removes leftovers of unfinished writes. */
  open(): Promise<SnapshotMeta | null>;
  /** Starts writing a snapshot described by `meta`. */
  begin(meta: SnapshotMeta): Promise<SnapshotWriter>;
  /**
   * Optional: stores the file at `path`, which holds exactly the snapshot's data, as snapshot
   * `meta` by taking the file over (moved, not copied); the file is gone afterwards, also on
   * failure. Stores without it get the data through `begin`.
   */
  adopt?(meta: SnapshotMeta, path: string): Promise<void>;
  /**
   * Reads up to `bytesMax` bytes of the snapshot's data at `offset` (synchronous: the core reads
   * chunks while it builds messages). Returns an empty array at the end.
   * Throws `CONCLAVE_SNAPSHOT_NOT_FOUND` when that snapshot is no longer retained.
   */
  read(meta: SnapshotMeta, offset: number, bytesMax: number): Uint8Array;
  /** The newest complete snapshot, or null. */
  latest(): SnapshotMeta | null;
  close(): Promise<void>;
}

/** What a node recovered at start. */
export interface RecoveredState {
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMeta | null;
  /** Every entry after the snapshot (or from index 1), consecutive and in order. */
  readonly entries: Entry[];
}

/** The three stores behind one group-committed `sync()`. See the module comment for the contract. */
export interface RaftStorage {
  open(): Promise<RecoveredState>;
  append(entries: readonly Entry[]): void;
  setHardState(hardState: HardState): void;
  /** One fsync per file touched (log segment, hard state), run in parallel. */
  sync(): Promise<void>;
  /** After a snapshot at `index`: drops log entries at or below it. */
  compact(index: number): Promise<void>;
  /** Drops the whole log (a snapshot from the leader replaced it); next append at `nextIndex`. */
  reset(nextIndex: number): Promise<void>;
  readonly snapshots: SnapshotStore;
  close(): Promise<void>;
}
