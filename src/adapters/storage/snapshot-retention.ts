/**
 * Which snapshots a store keeps, shared by the file and memory stores.
 *
 * A store holds two kinds: snapshots with data (copies of the state machine: sent to followers,
 * or installed from a leader) and marks (`inStateMachine`: only a description; the persistent
 * state machine holds the state). It keeps the newest `retainCount` with data — but of those
 * older than the newest mark only the newest copy (a transfer may be sending it) — and a mark
 * only while it is the newest of all: an older mark describes nothing a restart or a follower needs.
 */
import type { SnapshotMeta } from "../../raft/types.ts";

/** Same snapshot: index, term and kind (a mark and a copy may share an index and term). */
export function isSameSnapshot(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return a.index === b.index && a.term === b.term && isMark(a) === isMark(b);
}

export function isMark(meta: SnapshotMeta): boolean {
  return meta.inStateMachine === true;
}

/**
 * Oldest first; at the same index a mark comes after a copy (the state machine already holds
 * that state, so a restart needs no restore).
 */
export function compareSnapshots(a: SnapshotMeta, b: SnapshotMeta): number {
  return a.index - b.index || a.term - b.term || Number(isMark(a)) - Number(isMark(b));
}

/** The snapshots to drop from `sorted` (oldest first, by compareSnapshots). */
export function snapshotsToDrop<T extends { readonly meta: SnapshotMeta }>(
  sorted: readonly T[],
  retainCount: number,
): T[] {
  const newest = sorted.at(-1);
  const newestMark = sorted.findLast((snapshot) => isMark(snapshot.meta));
  const copies = sorted.filter((snapshot) => !isMark(snapshot.meta));
  const newestCopy = copies.at(-1);
  // Behind a mark, a copy is only good for a transfer under way, which uses the newest copy: the
  // others are disk space for nothing (after an upgrade, the copies an earlier release took).
  const keptCopies = new Set(
    copies
      .slice(Math.max(0, copies.length - retainCount))
      .filter(
        (copy) =>
          copy === newestCopy || newestMark === undefined || compareSnapshots(copy.meta, newestMark.meta) > 0,
      ),
  );
  return sorted.filter((snapshot) =>
    isMark(snapshot.meta) ? snapshot !== newest : !keptCopies.has(snapshot),
  );
}
