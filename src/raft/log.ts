/**
 * The Raft log as the core sees it: entries after the last compaction point, held in memory,
 * with a marker of how far they are known to be on stable storage.
 *
 * Memory stays bounded because the runtime compacts the log after each state-machine snapshot.
 * Entries are never mutated; truncation drops a suffix (only ever uncommitted entries).
 */
import { assert } from "../lib/assert.ts";
import type { Entry, Membership, SnapshotMeta } from "./types.ts";

export class RaftLog {
  /** Index of the entry just before `entries[0]` (the compaction point); 0 for a fresh log. */
  baseIndex = 0;
  /** Term of the entry at `baseIndex`. */
  baseTerm = 0;
  /** Membership in force at `baseIndex` (from the snapshot that replaced the compacted entries). */
  baseMembership: Membership = { voters: [], learners: [] };
  entries: Entry[] = [];
  /** Highest index the runtime has confirmed is on stable storage. */
  stableIndex = 0;
  /** Indexes of the config entries in `entries`, ascending (membership lookups stay O(1)). */
  configIndexes: number[] = [];
  /** {@link entryBytes} of every entry in `entries`: what the log holds in memory. */
  #bytes = 0;

  constructor(snapshot: SnapshotMeta | null, entries: readonly Entry[]) {
    if (snapshot) {
      this.baseIndex = snapshot.index;
      this.baseTerm = snapshot.term;
      this.baseMembership = snapshot.membership;
    }
    for (const entry of entries) {
      if (entry.index <= this.baseIndex) continue;
      assert(entry.index === this.lastIndex() + 1, () => `log gap: ${entry.index} after ${this.lastIndex()}`);
      this.entries.push(entry);
      this.#bytes += entryBytes(entry);
      if (entry.kind === "config") this.configIndexes.push(entry.index);
    }
    this.stableIndex = this.lastIndex();
  }

  /** Bytes of the entries held (command data, a small constant per other entry; see entryBytes). */
  bytes(): number {
    return this.#bytes;
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.entries.length;
  }

  lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    return last ? last.term : this.baseTerm;
  }

  /** Term of the entry at `index`, or null if it is compacted away or beyond the end. */
  term(index: number): number | null {
    if (index === this.baseIndex) return this.baseTerm;
    if (index < this.baseIndex || index > this.lastIndex()) return null;
    return (this.entries[index - this.baseIndex - 1] as Entry).term;
  }

  entry(index: number): Entry | undefined {
    return this.entries[index - this.baseIndex - 1];
  }

  /** True when the log holds an entry at `index` with `term` (index 0 always matches). */
  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Entries in [from, toInclusive], at most `countMax` of them and about `bytesMax` of command data. */
  slice(
    from: number,
    toInclusive: number,
    countMax = Number.POSITIVE_INFINITY,
    bytesMax = Number.POSITIVE_INFINITY,
  ): Entry[] {
    assert(from > this.baseIndex, () => `slice from ${from} but log is compacted to ${this.baseIndex}`);
    const last = Math.min(toInclusive, this.lastIndex(), from + countMax - 1);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = from; index <= last; index++) {
      const entry = this.entries[index - this.baseIndex - 1] as Entry;
      const size = entryBytes(entry);
      // Always at least one entry, so a single large entry still makes progress.
      if (result.length > 0 && bytes + size > bytesMax) break;
      bytes += size;
      result.push(entry);
    }
    return result;
  }

  /** Up-to-date check of §5.4.1: is a log ending at (lastTerm, lastIndex) at least as current as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends entries that directly follow the last one. */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.lastIndex() + 1, () => `append ${entry.index} after ${this.lastIndex()}`);
      assert(entry.term >= this.lastTerm(), () => `term goes back: ${entry.term} after ${this.lastTerm()}`);
      this.entries.push(entry);
      this.#bytes += entryBytes(entry);
      if (entry.kind === "config") this.configIndexes.push(entry.index);
    }
  }

  /** Drops every entry from `index` on (conflict resolution). */
  truncateFrom(index: number): void {
    assert(index > this.baseIndex, () => `truncate at ${index} below compaction point ${this.baseIndex}`);
    const kept = Math.max(0, index - this.baseIndex - 1);
    for (let at = kept; at < this.entries.length; at++) this.#bytes -= entryBytes(this.entries[at] as Entry);
    this.entries.length = kept;
    while (this.configIndexes.length > 0 && (this.configIndexes.at(-1) as number) >= index)
      this.configIndexes.pop();
    if (this.stableIndex >= index) this.stableIndex = index - 1;
  }

  /**
   * Follower side of AppendEntries: merges `entries` (which follow a matching prevIndex), keeping
   * what already matches and truncating at the first conflict. Returns the index of the first
   * entry that changed, or null when nothing did.
   */
  merge(entries: readonly Entry[], commitIndex: number): number | null {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      if (entry.index <= this.baseIndex) continue;
      const ours = this.term(entry.index);
      if (ours === entry.term) continue;
      if (ours !== null) {
        // Leader completeness (§5.4) promises a committed entry is never replaced.
        assert(
          entry.index > commitIndex,
          () => `would truncate committed entry ${entry.index} (commit ${commitIndex})`,
        );
        this.truncateFrom(entry.index);
      }
      this.append(entries.slice(i));
      return entry.index;
    }
    return null;
  }

  /** Discards entries up to `index` (inclusive), which must be applied and covered by a snapshot. */
  /**
   * Where to compact to, keeping up to `entriesMax` entries and about `bytesMax` bytes of them
   * behind `upTo` (for followers slightly behind): the lowest index in [upTo - entriesMax, upTo]
   * whose kept entries fit, never below the current compaction point.
   */
  compactionPointKeeping(upTo: number, entriesMax: number, bytesMax: number): number {
    const lowest = Math.max(this.baseIndex, upTo - entriesMax);
    let point = Math.max(this.baseIndex, Math.min(upTo, this.lastIndex()));
    let bytes = 0;
    while (point > lowest) {
      const entry = this.entry(point) as Entry;
      bytes += entryBytes(entry);
      if (bytes > bytesMax) break;
      point -= 1;
    }
    return point;
  }

  compact(index: number, membershipAtIndex: Membership): void {
    if (index <= this.baseIndex) return;
    assert(index <= this.lastIndex(), () => `compact to ${index} beyond last ${this.lastIndex()}`);
    const term = this.term(index) as number;
    const dropped = index - this.baseIndex;
    for (let at = 0; at < dropped; at++) this.#bytes -= entryBytes(this.entries[at] as Entry);
    this.entries = this.entries.slice(dropped);
    this.configIndexes = this.configIndexes.filter((configIndex) => configIndex > index);
    this.baseIndex = index;
    this.baseTerm = term;
    this.baseMembership = membershipAtIndex;
    this.stableIndex = Math.max(this.stableIndex, index);
  }

  /** Replaces the log with a snapshot's state, keeping entries after it if they agree with it. */
  restore(meta: SnapshotMeta): void {
    if (this.matchTerm(meta.index, meta.term) && meta.index <= this.lastIndex()) {
      this.compact(meta.index, meta.membership);
      return;
    }
    this.entries = [];
    this.#bytes = 0;
    this.configIndexes = [];
    this.baseIndex = meta.index;
    this.baseTerm = meta.term;
    this.baseMembership = meta.membership;
    this.stableIndex = meta.index;
  }

  /** Unstable entries: appended but not yet confirmed durable. */
  unstable(): Entry[] {
    return this.stableIndex >= this.lastIndex() ? [] : this.entries.slice(this.stableIndex - this.baseIndex);
  }

  /** The membership in force after the last entry (configuration takes effect when appended). */
  membershipAt(index: number): { membership: Membership; index: number } {
    for (let i = this.configIndexes.length - 1; i >= 0; i--) {
      const configIndex = this.configIndexes[i] as number;
      if (configIndex > index) continue;
      const entry = this.entry(configIndex);
      assert(entry?.kind === "config", () => `config index ${configIndex} is not a config entry`);
      return { membership: entry.membership, index: configIndex };
    }
    return { membership: this.baseMembership, index: this.baseIndex };
  }
}

/** An entry's size as replication counts it: a command's data, a small constant otherwise. */
export function entryBytes(entry: Entry): number {
  return entry.kind === "command" ? entry.data.byteLength : 16;
}
