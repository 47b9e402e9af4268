/**
 * Reads the segment files at open: verifies every record's checksums and the continuity of the
 * log, cuts a torn tail off the last segment, and refuses (CONCLAVE_STORAGE_CORRUPT) anything else.
 *
 * Why damage at the end of the last segment is a torn write and not corruption: a sync writes
 * one batch at the end of the last segment, and segment headers are made durable before any
 * record, so the only bytes a crash can leave half-written are the tail of the last segment.
 * Damage followed by an intact record cannot be such a tail, so it is reported as corruption.
 * Zeros from a record boundary to the end of a file are the unwritten part of a pre-sized
 * segment (see file-log-store.ts): the segment ends there, in any segment.
 */
import { open, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Entry } from "../../raft/types.ts";
import { corruptStorageError, type DiskGuard } from "./disk-guard.ts";
import { decodeEntry } from "./entry-codec.ts";
import { LogSegment, TermRuns } from "./log-index.ts";
import {
  decodeSegmentHeader,
  intactRecordFollows,
  isZeroFrom,
  parseSegmentFileName,
  RECORD_HEADER_BYTES,
  readRecord,
  SEGMENT_HEADER_BYTES,
} from "./segment-format.ts";

export interface RecoveredLog {
  readonly segments: LogSegment[];
  readonly entries: Entry[];
  readonly terms: TermRuns;
  /** True when recovery changed the directory (a torn segment removed) and it needs an fsync. */
  readonly directoryChanged: boolean;
}

interface ScanState {
  readonly entries: Entry[];
  readonly terms: TermRuns;
  /** The index the next record must have (null before the first segment). */
  nextIndex: number | null;
  lastTerm: number;
}

/** Lists segment files in index order. */
async function listSegments(directory: string): Promise<Array<{ firstIndex: number; fileName: string }>> {
  const found: Array<{ firstIndex: number; fileName: string }> = [];
  for (const fileName of await readdir(directory)) {
    const firstIndex = parseSegmentFileName(fileName);
    if (firstIndex !== null) found.push({ firstIndex, fileName });
  }
  return found.sort((a, b) => a.firstIndex - b.firstIndex);
}

/** Cuts a torn tail: the file ends at `sizeBytes` again, durably. */
async function cutTornTail(path: string, sizeBytes: number, guard: DiskGuard): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.truncate(sizeBytes);
  } catch (error) {
    await handle.close();
    throw guard.fail(error, `cutting the torn tail of ${path}`);
  }
  try {
    await guard.flush(handle, path);
  } finally {
    await handle.close();
  }
}

/** Scans one segment's records into `state`; returns the segment, or the offset of a torn tail. */
function scanSegment(
  bytes: Buffer,
  path: string,
  segment: LogSegment,
  isLast: boolean,
  state: ScanState,
): number | null {
  let offset = SEGMENT_HEADER_BYTES;
  while (offset < bytes.length) {
    const record = readRecord(bytes, offset);
    if (!("body" in record)) {
      if (isZeroFrom(bytes, offset)) break; // the pre-sized, never written end of the file
      if (!isLast)
        throw corruptStorageError(path, offset, `${record.problem} (in a segment that is not the last)`);
      if (intactRecordFollows(bytes, offset)) {
        throw corruptStorageError(path, offset, `${record.problem}, and intact records follow it`);
      }
      return offset;
    }
    const entry = decodeEntry(record.body);
    if (entry === null)
      throw corruptStorageError(path, offset, "the record checksum matches but it is not a log entry");
    const expectedIndex = state.nextIndex ?? entry.index;
    if (entry.index !== expectedIndex) {
      throw corruptStorageError(
        path,
        offset,
        `entry index ${entry.index} where ${expectedIndex} was expected`,
      );
    }
    if (entry.term < state.lastTerm) {
      throw corruptStorageError(path, offset, `entry term ${entry.term} after term ${state.lastTerm}`);
    }
    state.entries.push(entry);
    state.terms.push(entry.index, entry.term);
    state.nextIndex = entry.index + 1;
    state.lastTerm = entry.term;
    segment.pushRecord(offset);
    offset += RECORD_HEADER_BYTES + record.body.length;
  }
  segment.sizeBytes = offset;
  return null;
}

/** Reads and verifies every segment in `directory`. */
export async function recoverLog(directory: string, guard: DiskGuard): Promise<RecoveredLog> {
  const files = await listSegments(directory);
  const state: ScanState = { entries: [], terms: new TermRuns(), nextIndex: null, lastTerm: 0 };
  const segments: LogSegment[] = [];
  let directoryChanged = false;
  for (const [position, file] of files.entries()) {
    const isLast = position === files.length - 1;
    const path = join(directory, file.fileName);
    const bytes = await readFile(path);
    if (isLast && bytes.length < SEGMENT_HEADER_BYTES) {
      // Created by a sync that did not complete (headers are synced before any record).
      await unlink(path);
      directoryChanged = true;
      break;
    }
    const header = decodeSegmentHeader(bytes);
    if (typeof header === "string") throw corruptStorageError(path, 0, header);
    if (header !== file.firstIndex) {
      throw corruptStorageError(
        path,
        0,
        `the header says first index ${header}, the file name ${file.firstIndex}`,
      );
    }
    if (state.nextIndex !== null && header !== state.nextIndex) {
      throw corruptStorageError(
        path,
        0,
        `the segment starts at index ${header} where ${state.nextIndex} was expected`,
      );
    }
    state.nextIndex = header;
    const segment = new LogSegment(header, file.fileName, SEGMENT_HEADER_BYTES);
    const tornAt = scanSegment(bytes, path, segment, isLast, state);
    if (tornAt !== null) {
      segment.sizeBytes = tornAt;
      await cutTornTail(path, tornAt, guard);
    }
    segments.push(segment);
  }
  return { segments, entries: state.entries, terms: state.terms, directoryChanged };
}
