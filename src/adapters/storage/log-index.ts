/**
 * The in-memory index of the file log: per segment, the byte offset of each record (4 bytes an
 * entry, needed to truncate at an index), and the terms as runs (a few entries: terms change
 * rarely), needed to check that appends keep terms non-decreasing. Segments dropped by
 * compaction take their offsets with them, so the index is only as large as the live log.
 */
import { assert } from "../../lib/assert.ts";

/** A segment file and where its records are. */
export class LogSegment {
  readonly firstIndex: number;
  readonly fileName: string;
  /** Bytes of the file that hold the header and whole records. */
  sizeBytes: number;
  #offsets = new Uint32Array(64);
  #entryCount = 0;

  constructor(firstIndex: number, fileName: string, sizeBytes: number) {
    this.firstIndex = firstIndex;
    this.fileName = fileName;
    this.sizeBytes = sizeBytes;
  }

  get entryCount(): number {
    return this.#entryCount;
  }

  /** Index of the last entry, or firstIndex - 1 when empty. */
  get lastIndex(): number {
    return this.firstIndex + this.#entryCount - 1;
  }

  /** Records that the next entry starts at `offsetBytes`. */
  pushRecord(offsetBytes: number): void {
    if (this.#entryCount === this.#offsets.length) {
      const grown = new Uint32Array(this.#offsets.length * 2);
      grown.set(this.#offsets);
      this.#offsets = grown;
    }
    this.#offsets[this.#entryCount] = offsetBytes;
    this.#entryCount += 1;
  }

  /** Byte offset of the record of `index` (which this segment holds). */
  offsetOf(index: number): number {
    assert(
      index >= this.firstIndex && index <= this.lastIndex,
      () => `index ${index} not in ${this.fileName}`,
    );
    return this.#offsets[index - this.firstIndex] ?? 0;
  }

  /** Forgets entries from `index` on; the caller cuts the file at `offsetOf(index)`. */
  truncateFrom(index: number, sizeBytes: number): void {
    assert(index >= this.firstIndex, "truncation below the segment's first index");
    this.#entryCount = Math.min(this.#entryCount, index - this.firstIndex);
    this.sizeBytes = sizeBytes;
  }
}

/** Terms by index, stored as runs of equal terms. */
export class TermRuns {
  /** Pairs (first index of the run, term), ascending. */
  #runs: Array<{ firstIndex: number; term: number }> = [];

  /** Records the term of `index`, which must follow the last recorded index. */
  push(index: number, term: number): void {
    const last = this.#runs.at(-1);
    if (last?.term === term) return;
    this.#runs.push({ firstIndex: index, term });
  }

  /** The term of `index`, or null if no run covers it (compacted or never recorded). */
  termAt(index: number): number | null {
    for (let position = this.#runs.length - 1; position >= 0; position -= 1) {
      const run = this.#runs[position];
      if (run !== undefined && run.firstIndex <= index) return run.term;
    }
    return null;
  }

  /** Forgets terms from `index` on. */
  truncateFrom(index: number): void {
    while ((this.#runs.at(-1)?.firstIndex ?? -1) >= index) this.#runs.pop();
  }

  /** Forgets runs that end before `index` (keeps the run covering it). */
  dropBefore(index: number): void {
    while (this.#runs.length > 1 && (this.#runs[1]?.firstIndex ?? Number.POSITIVE_INFINITY) <= index) {
      this.#runs.shift();
    }
  }

  clear(): void {
    this.#runs = [];
  }
}
