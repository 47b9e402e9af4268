/**
 * What a leader knows about one follower's log (thesis §3.5, etcd's Progress):
 * - probe: we do not know where its log ends; one append at a time until one succeeds;
 * - replicate: streaming, optimistically advancing `next`, at most `inflightMax` appends unacknowledged;
 * - snapshot: its log is behind our compaction point; a snapshot is streamed in chunks.
 */
import type { SnapshotMeta } from "./types.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

export interface SnapshotTransfer {
  meta: SnapshotMeta;
  /** Next byte to send. */
  offset: number;
  /** Bytes sent but not yet acknowledged (one chunk in flight at a time). */
  inFlightBytes: number;
  /** Ticks since the last chunk was sent; a lost chunk is resent after a timeout. */
  idleTicks: number;
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an append is out and we wait for its answer (or the next heartbeat). */
  probeSent = false;
  /** Last index of each unacknowledged append in replicate state, oldest first. */
  inflight: number[] = [];
  /** Entry bytes of each unacknowledged append (parallel to `inflight`), and their sum. */
  inflightBytes: number[] = [];
  inflightBytesTotal = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = true;
  /** Highest heartbeat round this follower acknowledged (confirms ReadIndex and leases). */
  ackedRound = 0;
  snapshot: SnapshotTransfer | null = null;
  /** The commit index we last told this follower (an empty append carries a newer one). */
  sentCommit = 0;

  constructor(next: number) {
    this.next = next;
  }

  becomeProbe(): void {
    this.state = "probe";
    this.probeSent = false;
    this.#clearInflight();
    this.snapshot = null;
    this.next = Math.max(this.next, this.match + 1);
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.#clearInflight();
    this.snapshot = null;
    this.next = this.match + 1;
  }

  becomeSnapshot(meta: SnapshotMeta): void {
    this.state = "snapshot";
    this.#clearInflight();
    this.snapshot = { meta, offset: 0, inFlightBytes: 0, idleTicks: 0 };
  }

  /** Records an acknowledged match; returns true if it moved forward. */
  acknowledge(matchIndex: number): boolean {
    let moved = false;
    if (matchIndex > this.match) {
      this.match = matchIndex;
      moved = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, matchIndex + 1);
    while (this.inflight.length > 0 && (this.inflight[0] as number) <= matchIndex) {
      this.inflight.shift();
      this.inflightBytesTotal -= this.inflightBytes.shift() ?? 0;
    }
    return moved;
  }

  /**
   * In replicate state, at most `inflightMax` appends and, beyond the first, `inflightBytesMax`
   * bytes of entries unacknowledged: a follower that falls behind holds a bounded amount of the
   * leader's memory and of the link, whatever the entry size.
   */
  canSend(inflightMax: number, inflightBytesMax = Number.POSITIVE_INFINITY): boolean {
    if (this.state === "probe") return !this.probeSent;
    if (this.state === "replicate") {
      return (
        this.inflight.length < inflightMax &&
        (this.inflight.length === 0 || this.inflightBytesTotal < inflightBytesMax)
      );
    }
    return false;
  }

  /** Records that entries up to `lastIndex` were sent (`bytes` of them, as replication counts). */
  sent(lastIndex: number, bytes = 0): void {
    if (this.state === "replicate") {
      if (lastIndex >= this.next) {
        this.inflight.push(lastIndex);
        this.inflightBytes.push(bytes);
        this.inflightBytesTotal += bytes;
        this.next = lastIndex + 1;
      }
    } else {
      this.probeSent = true;
    }
  }

  #clearInflight(): void {
    this.inflight = [];
    this.inflightBytes = [];
    this.inflightBytesTotal = 0;
  }
}
