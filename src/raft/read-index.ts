/**
 * Linearizable reads without writing to the log (thesis §6.4).
 *
 * ReadIndex: the leader notes its commit index (or what its durable notices announced, if more:
 * a follower may have committed and answered up to there), then confirms it is still leader by a heartbeat
 * round that a quorum acknowledges; the read is served once the state machine has applied that
 * index. Reads arriving together share one round, and so do reads arriving while a round is in
 * flight: the next round starts once that one is confirmed (or at the next tick, should its
 * messages be lost), as etcd's server keeps one ReadIndex in flight. A round sent after a read
 * arrived confirms it, whichever round that is. A new leader first commits an entry of its own
 * term (its no-op): only then is its commit index known to include every committed write.
 *
 * Lease (optional): after a quorum acknowledged a round sent at tick s, no other leader can be
 * elected before s + electionTimeout on any follower's clock (they ignore candidates while they
 * hear from us), so reads are served at once until s + electionTimeout − leaseDriftTicks.
 */
import { quorumSize } from "./membership.ts";
import type { RaftNode } from "./raft-node.ts";
import type { NodeId } from "./types.ts";

export interface ReadState {
  readonly id: number;
  /** Serve the read once the state machine has applied this index. */
  readonly index: number;
}

interface PendingRead {
  readonly id: number;
  readonly index: number;
  readonly round: number;
}

export class ReadTracker {
  #round = 0;
  /** The newest round a quorum acknowledged. */
  #confirmedRound = 0;
  #roundSentTick = new Map<number, number>();
  /** Reads waiting for the leader's first commit in its term. */
  #awaitingCommit: number[] = [];
  /** Reads waiting for the next heartbeat round to start. */
  #awaitingRound: { id: number; index: number }[] = [];
  #pending: PendingRead[] = [];
  #ready: ReadState[] = [];
  #failed: number[] = [];
  /** Tick at which the newest quorum-acknowledged round was sent (lease start). */
  #leaseStartTick: number | null = null;
  /**
   * Set once this leader sent timeout-now: voters grant that election even while they hear from us,
   * so no acknowledged round proves that no other leader exists. Cleared when leadership ends.
   */
  #leaseRevoked = false;

  request(node: RaftNode, id: number): void {
    if (!node.committedInCurrentTerm()) {
      this.#awaitingCommit.push(id);
      return;
    }
    // A follower may have answered a write its durable notice let it commit before this leader
    // heard of it: such a write was answered before this read came, so the read waits for it.
    const ignoreNotices = node.settings.mutations.has("read-ignores-durable-notices");
    const index = ignoreNotices ? node.commit : Math.max(node.commit, node.durableNoticeIndex);
    const soleVoter = node.membership.voters.length === 1 && node.membership.voters[0] === node.id;
    if (soleVoter || node.settings.mutations.has("read-without-quorum")) {
      this.#ready.push({ id, index });
    } else if (this.#leaseValid(node)) {
      this.#ready.push({ id, index });
    } else {
      this.#awaitingRound.push({ id, index });
    }
  }

  /** The leader committed its first entry of the term: queued reads can proceed. */
  leaderReady(node: RaftNode): void {
    const waiting = this.#awaitingCommit;
    this.#awaitingCommit = [];
    for (const id of waiting) this.request(node, id);
  }

  startRoundIfNeeded(node: RaftNode): void {
    if (this.#canStartRound(node)) this.broadcastHeartbeat(node);
  }

  /** Reads wait, and no round sent in this tick is still unconfirmed. */
  #canStartRound(node: RaftNode): boolean {
    if (this.#awaitingRound.length === 0) return false;
    const inFlight = this.#round > this.#confirmedRound && this.#roundSentTick.get(this.#round) === node.now;
    return !inFlight;
  }

  /** Sends a heartbeat round to every peer; reads waiting for a round join it. */
  broadcastHeartbeat(node: RaftNode): void {
    const round = ++this.#round;
    this.#roundSentTick.set(round, node.now);
    for (const read of this.#awaitingRound) this.#pending.push({ ...read, round });
    this.#awaitingRound = [];
    for (const [peer, progress] of node.progress) {
      node.send({
        type: "heartbeat",
        from: node.id,
        to: peer,
        term: node.term,
        commit: Math.min(progress.match, node.commit),
        round,
      });
    }
    // Only rounds not yet confirmed matter; bound the map.
    if (this.#roundSentTick.size > 1024) {
      for (const key of this.#roundSentTick.keys()) {
        if (key < round - 512) this.#roundSentTick.delete(key);
        else break;
      }
    }
    this.acknowledge(node, node.id, round);
  }

  acknowledge(node: RaftNode, from: NodeId, round: number): void {
    if (from !== node.id) {
      const progress = node.progress.get(from);
      if (!progress || round <= progress.ackedRound) return;
      progress.ackedRound = round;
    }
    const acked = node.membership.voters.map((voter) =>
      voter === node.id ? this.#round : (node.progress.get(voter)?.ackedRound ?? 0),
    );
    acked.sort((a, b) => b - a);
    const confirmed = acked[quorumSize(acked.length) - 1] ?? 0;
    if (confirmed === 0) return;
    this.#confirmedRound = Math.max(this.#confirmedRound, confirmed);
    const sentTick = this.#roundSentTick.get(confirmed);
    if (sentTick !== undefined && (this.#leaseStartTick === null || sentTick > this.#leaseStartTick)) {
      this.#leaseStartTick = sentTick;
    }
    while (this.#pending.length > 0 && (this.#pending[0] as PendingRead).round <= confirmed) {
      const read = this.#pending.shift() as PendingRead;
      this.#ready.push({ id: read.id, index: read.index });
    }
  }

  /** Leadership lost: nothing waiting can be confirmed here any more. */
  failAll(): void {
    for (const id of this.#awaitingCommit) this.#failed.push(id);
    for (const read of this.#awaitingRound) this.#failed.push(read.id);
    for (const read of this.#pending) this.#failed.push(read.id);
    this.#awaitingCommit = [];
    this.#awaitingRound = [];
    this.#pending = [];
    this.#roundSentTick.clear();
    this.#confirmedRound = this.#round;
    this.#leaseStartTick = null;
    this.#leaseRevoked = false;
  }

  /** No more lease reads in this term (a leadership transfer started). */
  revokeLease(): void {
    this.#leaseRevoked = true;
  }

  hasOutput(node: RaftNode): boolean {
    return this.#ready.length > 0 || this.#failed.length > 0 || this.#canStartRound(node);
  }

  takeReady(): ReadState[] {
    const ready = this.#ready;
    this.#ready = [];
    return ready;
  }

  takeFailed(): number[] {
    const failed = this.#failed;
    this.#failed = [];
    return failed;
  }

  #leaseValid(node: RaftNode): boolean {
    const drift = node.settings.leaseDriftTicks;
    if (drift === null || !node.settings.checkQuorum || this.#leaseStartTick === null) return false;
    if (this.#leaseRevoked) return false;
    return node.now < this.#leaseStartTick + node.options.electionTimeoutTicks - drift;
  }
}
