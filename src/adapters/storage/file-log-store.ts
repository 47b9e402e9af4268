/**
 * The log in append-only segment files (see segment-format.ts). `append` encodes into memory;
 * `sync` issues one write for the whole batch (plus an fsync of the directory when a segment was
 * created or deleted).
 *
 * The active segment is open with O_DSYNC, so that one write is also the flush: it returns once
 * the data and the file size are on disk, as write + fdatasync would, in one trip to libuv's
 * thread pool instead of two with the main thread in between (measured: that gap was up to
 * ~2 ms per batch on a busy 2-core machine, the largest single item in a write's latency). A
 * failed O_DSYNC write is treated like a failed fsync: fail-stop, never retried.
 *
 * The active segment's file is also kept longer than its records (`presizeBytes` of zeros, not
 * allocated): a write inside the file's size does not change it, so the disk does not have to
 * commit the file system's journal for every write (measured with three processes writing at
 * once, as three members on one disk do: O_DSYNC writes of 300 B took 0.37 ms at p50 when they
 * grew the file, 0.27 ms when they did not). Recovery reads a zero tail as the segment's end.
 */
import { constants } from "node:fs";
import { type FileHandle, mkdir, open, unlink } from "node:fs/promises";
import { join } from "node:path";
import { assert } from "../../lib/assert.ts";
import { ConclaveError } from "../../lib/errors.ts";
import type { LogRecovery, LogStore } from "../../ports/storage.ts";
import type { Entry } from "../../raft/types.ts";
import { DiskGuard } from "./disk-guard.ts";
import type { DurableWrites } from "./durable-writes.ts";
import { encodeEntry } from "./entry-codec.ts";
import { LogSegment, TermRuns } from "./log-index.ts";
import { recoverLog } from "./log-recovery.ts";
import {
  encodeRecord,
  encodeSegmentHeader,
  RECORD_BODY_BYTES_MAX,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from "./segment-format.ts";
import { SerialQueue } from "./serial-queue.ts";

export interface FileLogStoreOptions {
  /** A segment is rolled once the next batch would take it past this size. */
  readonly segmentBytesMax?: number;
  /** How far the active segment's file is extended past its records when a write reaches its end (0: never). */
  readonly presizeBytes?: number;
  /** Counts the durable writes and fsyncs (GET /v1/metrics). */
  readonly durableWrites?: DurableWrites;
}

/**
 * 8 MiB, not etcd's 64: the log is compacted by deleting whole segments, and a start reads and
 * decodes every segment left. With 64 MiB a member's one active segment held every entry since
 * the start, and a restarted member read and decoded all of it: one node with 150,000 small
 * writes had a 47 MB segment, and 314 MB RSS after a restart against 153 MB before it. With
 * 8 MiB the same node kept one 5 MB segment and restarted at 146 MB; put ×64 was unchanged
 * (10 KB values 1,968 puts/s, 100 B 5,323).
 */
export const SEGMENT_BYTES_MAX_DEFAULT = 8 * 1024 * 1024;
const PRESIZE_BYTES_DEFAULT = 1024 * 1024;

/** Flags of the active segment's handle: every write is durable when it returns. */
const SEGMENT_WRITE_FLAGS = constants.O_RDWR | constants.O_DSYNC;

/** {@link LogStore} on segment files in `directory`. */
export class FileLogStore implements LogStore {
  readonly directory: string;
  readonly #segmentBytesMax: number;
  readonly #presizeBytes: number;
  readonly #guard: DiskGuard;
  readonly #queue = new SerialQueue();
  #segments: LogSegment[] = [];
  #terms = new TermRuns();
  /** Handle of the last segment, open for writing, and that file's size (its records and zeros). */
  #active: FileHandle | null = null;
  #activeFileBytes = 0;
  #opened = false;
  /** Index of the first entry held, or the next index when the log is empty. */
  #startIndex = 1;
  #lastIndex = 0;
  /** Encoded records staged by append, for indexes #pendingFirstIndex... */
  #pending: Buffer[] = [];
  #pendingFirstIndex = 1;
  /** Lowest index to cut from the files at the next sync (conflict resolution), or null. */
  #truncateFrom: number | null = null;
  #directoryDirty = false;
  #syncing = false;

  constructor(directory: string, options: FileLogStoreOptions = {}) {
    this.directory = directory;
    this.#segmentBytesMax = options.segmentBytesMax ?? SEGMENT_BYTES_MAX_DEFAULT;
    this.#presizeBytes = options.presizeBytes ?? PRESIZE_BYTES_DEFAULT;
    this.#guard = new DiskGuard(directory, options.durableWrites ?? null);
  }

  async open(): Promise<LogRecovery> {
    assert(!this.#opened, "FileLogStore.open called twice");
    await mkdir(this.directory, { recursive: true });
    const recovered = await recoverLog(this.directory, this.#guard);
    this.#segments = recovered.segments;
    this.#terms = recovered.terms;
    this.#directoryDirty = recovered.directoryChanged;
    const first = recovered.entries[0];
    const last = recovered.entries.at(-1);
    this.#startIndex = first?.index ?? this.#segments[0]?.firstIndex ?? 1;
    this.#lastIndex = last?.index ?? this.#startIndex - 1;
    const lastSegment = this.#segments.at(-1);
    if (lastSegment !== undefined) await this.#openActive(lastSegment);
    this.#opened = true;
    return { entries: recovered.entries };
  }

  lastIndex(): number {
    return this.#lastIndex;
  }

  append(entries: readonly Entry[]): void {
    this.#guard.assertUsable();
    assert(this.#opened, "FileLogStore.append before open");
    assert(!this.#syncing, "append while a sync is in flight: the runtime persists one batch at a time");
    const first = entries[0];
    if (first === undefined) return;
    assert(
      first.index >= this.#startIndex,
      () => `append at ${first.index} below the log start ${this.#startIndex}`,
    );
    assert(
      first.index <= this.#lastIndex + 1,
      () => `append at ${first.index} leaves a gap after ${this.#lastIndex}`,
    );
    // Everything is checked and encoded before the staged state changes.
    let previousTerm = this.#terms.termAt(first.index - 1) ?? 0;
    let expectedIndex = first.index;
    const records: Buffer[] = [];
    for (const entry of entries) {
      assert(entry.index === expectedIndex, () => `entry ${entry.index} where ${expectedIndex} was expected`);
      assert(
        entry.term >= previousTerm,
        () => `entry ${entry.index} has term ${entry.term} < ${previousTerm}`,
      );
      const body = encodeEntry(entry);
      if (body.length > RECORD_BODY_BYTES_MAX) {
        throw new ConclaveError(
          "CONCLAVE_ENTRY_TOO_LARGE",
          `Log entry ${entry.index} encodes to ${body.length} bytes; the limit is ${RECORD_BODY_BYTES_MAX}. ` +
            "Split the command into smaller ones.",
          { index: entry.index, bytes: body.length },
        );
      }
      records.push(encodeRecord(body));
      previousTerm = entry.term;
      expectedIndex += 1;
    }
    if (first.index <= this.#lastIndex) this.#truncateStaged(first.index);
    if (this.#pending.length === 0) this.#pendingFirstIndex = first.index;
    this.#pending.push(...records);
    for (const entry of entries) this.#terms.push(entry.index, entry.term);
    this.#lastIndex = expectedIndex - 1;
  }

  /** Conflict: forget staged entries from `index` on, and cut the files there at the next sync. */
  #truncateStaged(index: number): void {
    if (this.#pending.length > 0 && index >= this.#pendingFirstIndex) {
      this.#pending.length = index - this.#pendingFirstIndex;
    } else {
      this.#pending = [];
      this.#truncateFrom = Math.min(this.#truncateFrom ?? index, index);
    }
    this.#terms.truncateFrom(index);
    this.#lastIndex = index - 1;
  }

  sync(): Promise<void> {
    this.#guard.assertUsable();
    assert(this.#opened, "FileLogStore.sync before open");
    return this.#queue.run(async () => {
      this.#syncing = true;
      try {
        await this.#syncNow();
      } finally {
        this.#syncing = false;
      }
    });
  }

  async #syncNow(): Promise<void> {
    if (this.#truncateFrom !== null) {
      await this.#cutFiles(this.#truncateFrom);
      this.#truncateFrom = null;
    }
    // The batch write is durable when it returns (O_DSYNC); only a directory change needs a flush.
    if (this.#pending.length > 0) await this.#writePending();
    if (this.#directoryDirty) await this.#flushDirectory();
  }

  async #flushDirectory(): Promise<void> {
    // Cleared first: a failed directory fsync fails the store anyway (never retried).
    this.#directoryDirty = false;
    const handle = await open(this.directory, "r");
    try {
      await this.#guard.flush(handle, this.directory);
    } finally {
      await handle.close();
    }
  }

  /** Writes the staged records as one write at the end of the last segment (rolling if full). */
  async #writePending(): Promise<void> {
    const batch = Buffer.concat(this.#pending);
    let segment = this.#segments.at(-1);
    const full = segment !== undefined && segment.sizeBytes + batch.length > this.#segmentBytesMax;
    if (segment === undefined || this.#active === null || (full && segment.entryCount > 0)) {
      segment = await this.#createSegment(this.#pendingFirstIndex, batch.length);
    }
    assert(
      segment.lastIndex + 1 === this.#pendingFirstIndex,
      "staged entries do not follow the last segment",
    );
    const active = this.#active;
    assert(active !== null, "no active segment");
    const startBytes = segment.sizeBytes;
    const path = join(this.directory, segment.fileName);
    // Awaited only when the file grows: an await of nothing would still yield, and the write
    // below is meant to start before the caller yields (see SerialQueue).
    if (this.#mustPresize(startBytes + batch.length))
      await this.#presize(active, path, startBytes + batch.length);
    const startedMs = performance.now();
    await this.#guard.write(
      `write to ${path}`,
      batch.length,
      async () => {
        let doneBytes = 0;
        while (doneBytes < batch.length) {
          const { bytesWritten } = await active.write(
            batch,
            doneBytes,
            batch.length - doneBytes,
            startBytes + doneBytes,
          );
          doneBytes += bytesWritten;
        }
      },
      async () => {
        await active.truncate(startBytes);
        this.#activeFileBytes = startBytes;
      },
    );
    this.#guard.countDurable(batch.length, startedMs);
    let offset = startBytes;
    for (const record of this.#pending) {
      segment.pushRecord(offset);
      offset += record.length;
    }
    segment.sizeBytes = offset;
    this.#pending = [];
  }

  /**
   * Makes the active segment's file at least `endBytes` long, `presizeBytes` beyond when it has
   * to grow: zeros the file system does not allocate until written. The new size is made durable
   * at once, so the writes inside it change no metadata but their blocks.
   */
  #mustPresize(endBytes: number): boolean {
    return endBytes > this.#activeFileBytes && this.#presizeBytes !== 0;
  }

  async #presize(active: FileHandle, path: string, endBytes: number): Promise<void> {
    if (!this.#mustPresize(endBytes)) return;
    const sizeBytes = endBytes + this.#presizeBytes;
    const previousBytes = this.#activeFileBytes;
    await this.#guard.write(
      `extending ${path}`,
      0,
      () => active.truncate(sizeBytes),
      () => active.truncate(previousBytes),
    );
    await this.#guard.flush(active, path);
    this.#activeFileBytes = sizeBytes;
  }

  /** Opens `segment` for writing as the active one. */
  async #openActive(segment: LogSegment): Promise<void> {
    const handle = await open(join(this.directory, segment.fileName), SEGMENT_WRITE_FLAGS);
    this.#active = handle;
    this.#activeFileBytes = (await handle.stat()).size;
  }

  /** Creates a segment whose header is durable before any record is written to it. */
  async #createSegment(firstIndex: number, batchBytes: number): Promise<LogSegment> {
    const fileName = segmentFileName(firstIndex);
    const path = join(this.directory, fileName);
    let handle: FileHandle | null = null;
    await this.#guard.write(
      `creating ${path}`,
      SEGMENT_HEADER_BYTES + batchBytes,
      async () => {
        handle = await open(path, SEGMENT_WRITE_FLAGS | constants.O_CREAT | constants.O_EXCL, 0o644);
        await handle.write(encodeSegmentHeader(firstIndex), 0, SEGMENT_HEADER_BYTES, 0);
      },
      async () => {
        await (handle as FileHandle | null)?.close();
        await unlink(path);
      },
    );
    const created = handle as FileHandle | null;
    assert(created !== null, "segment not created");
    await this.#guard.flush(created, path);
    this.#directoryDirty = true;
    await this.#flushDirectory();
    await this.#closeActiveTrimmed();
    this.#active = created;
    this.#activeFileBytes = SEGMENT_HEADER_BYTES;
    const segment = new LogSegment(firstIndex, fileName, SEGMENT_HEADER_BYTES);
    this.#segments.push(segment);
    return segment;
  }

  /**
   * Closes the active segment, cut back to its records first: a segment that is no longer written
   * keeps no zeros (not synced: a zero tail left by a crash reads the same).
   */
  async #closeActiveTrimmed(): Promise<void> {
    const active = this.#active;
    const segment = this.#segments.at(-1);
    if (active === null) return;
    this.#active = null;
    try {
      if (segment !== undefined && this.#activeFileBytes > segment.sizeBytes)
        await active.truncate(segment.sizeBytes);
    } catch (error) {
      throw this.#guard.fail(error, `trimming ${join(this.directory, segment?.fileName ?? "")}`);
    } finally {
      await active.close();
    }
  }

  /**
   * Cuts the files from `index` on: later segments are deleted (newest first, then the directory
   * is synced), then the segment holding `index` is truncated and synced, so that a crash never
   * leaves old entries after a newer write.
   */
  async #cutFiles(index: number): Promise<void> {
    let deleted = false;
    while ((this.#segments.at(-1)?.firstIndex ?? 0) > index) {
      await this.#deleteLastSegment();
      deleted = true;
    }
    if (deleted) {
      this.#directoryDirty = true;
      await this.#flushDirectory();
    }
    const segment = this.#segments.at(-1);
    if (segment !== undefined && segment.lastIndex >= index && this.#active !== null) {
      const active = this.#active;
      const cutBytes = segment.offsetOf(index);
      const path = join(this.directory, segment.fileName);
      try {
        await active.truncate(cutBytes);
      } catch (error) {
        throw this.#guard.fail(error, `truncating ${path}`);
      }
      segment.truncateFrom(index, cutBytes);
      this.#activeFileBytes = cutBytes;
      await this.#guard.flush(active, path);
    }
  }

  async #deleteLastSegment(): Promise<void> {
    const segment = this.#segments.pop();
    assert(segment !== undefined, "no segment to delete");
    await this.#active?.close();
    this.#active = null;
    await this.#unlink(segment);
    const previous = this.#segments.at(-1);
    if (previous !== undefined) await this.#openActive(previous);
  }

  async #unlink(segment: LogSegment): Promise<void> {
    const path = join(this.directory, segment.fileName);
    try {
      await unlink(path);
    } catch (error) {
      throw this.#guard.fail(error, `deleting ${path}`);
    }
  }

  compact(index: number): Promise<void> {
    this.#guard.assertUsable();
    assert(!this.#syncing, "compact while a sync is in flight");
    return this.#queue.run(async () => {
      if (index >= this.#lastIndex) {
        await this.#dropEverything(index + 1);
        return;
      }
      if (index < this.#startIndex) return;
      // Oldest first: a crash in between leaves a suffix of the log, which is still consistent.
      while (this.#segments.length > 1 && (this.#segments[1]?.firstIndex ?? 0) - 1 <= index) {
        const oldest = this.#segments.shift();
        if (oldest !== undefined) await this.#unlink(oldest);
        this.#directoryDirty = true;
      }
      if (this.#pending.length > 0 && index >= this.#pendingFirstIndex) {
        this.#pending.splice(0, index + 1 - this.#pendingFirstIndex);
        this.#pendingFirstIndex = index + 1;
      }
      this.#startIndex = index + 1;
      this.#terms.dropBefore(index + 1);
    });
  }

  reset(nextIndex: number): Promise<void> {
    this.#guard.assertUsable();
    assert(!this.#syncing, "reset while a sync is in flight");
    return this.#queue.run(() => this.#dropEverything(nextIndex));
  }

  async #dropEverything(nextIndex: number): Promise<void> {
    await this.#active?.close();
    this.#active = null;
    for (const segment of this.#segments) await this.#unlink(segment);
    this.#directoryDirty ||= this.#segments.length > 0;
    this.#segments = [];
    this.#pending = [];
    this.#truncateFrom = null;
    this.#terms.clear();
    this.#startIndex = nextIndex;
    this.#lastIndex = nextIndex - 1;
  }

  async close(): Promise<void> {
    await this.#queue.run(async () => {
      await this.#active?.close();
      this.#active = null;
    });
  }
}
