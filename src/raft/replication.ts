/**
 * Log replication (§5.3) and snapshot streaming, from both sides.
 *
 * Leader: appends are generated in `ready()` (not per proposal), so every proposal made between
 * two Ready batches travels in one message per follower. A follower in `replicate` state gets up
 * to `inflightMax` appends without waiting; a rejection carries the conflicting term and its
 * first index so the leader skips a whole term per round trip (§5.3, "fast back-off").
 */
import { assert } from "../lib/assert.ts";
import { entryBytes } from "./log.ts";
import { isVoter, leaderAndFollowerAreQuorum, quorumMatchIndex } from "./membership.ts";
import type { Progress } from "./progress.ts";
import type { RaftNode } from "./raft-node.ts";
import type {
  AppendRequest,
  AppendResponse,
  DurableNotice,
  Heartbeat,
  HeartbeatResponse,
  NodeId,
  SnapshotChunk,
  SnapshotResponse,
} from "./types.ts";

// ------------------------------------------------------------------ leader side

/** Sends whatever each follower can take now: new entries, a commit update, or a snapshot chunk. */
export function sendAppends(node: RaftNode): void {
  for (const [peer, progress] of node.progress) sendTo(node, peer, progress);
}

function sendTo(node: RaftNode, peer: NodeId, progress: Progress): void {
  const { log, settings } = node;
  for (;;) {
    if (progress.state === "probe" || progress.state === "replicate") {
      if (progress.next <= log.baseIndex) {
        const forTransfer = node.options.snapshotForTransfer;
        // A copy made for a follower that does not answer (it is down) would be disk work for
        // nothing: wait until it answers again (as etcd waits for RecentActive).
        if (forTransfer !== undefined && !progress.recentActive) return;
        const snapshot = forTransfer === undefined ? node.latestSnapshot : forTransfer(log.baseIndex);
        if (snapshot === null && forTransfer !== undefined) return; // asked again at its next answer
        assert(snapshot !== null, "the log is compacted but there is no snapshot");
        assert(
          snapshot.index >= log.baseIndex && snapshot.inStateMachine !== true,
          () =>
            `snapshot ${snapshot.term}-${snapshot.index} cannot be sent (log starts after ${log.baseIndex})`,
        );
        progress.becomeSnapshot(snapshot);
      }
    }
    if (progress.state === "snapshot") {
      sendSnapshotChunk(node, peer, progress);
      return;
    }
    if (!progress.canSend(settings.inflightMax, settings.inflightBytesMax)) return;
    const hasEntries = progress.next <= log.lastIndex();
    const commitBehind = progress.sentCommit < node.commit;
    if (!hasEntries && !commitBehind && progress.state === "replicate") return;
    const prevIndex = progress.next - 1;
    const prevTerm = log.term(prevIndex);
    assert(prevTerm !== null, () => `no term for ${prevIndex} (log ${log.baseIndex}..${log.lastIndex()})`);
    const entries = hasEntries
      ? log.slice(progress.next, log.lastIndex(), settings.appendEntriesMax, settings.appendBytesMax)
      : [];
    // A commit update to a streaming follower needs no answer: replicate state counts no
    // in-flight slot for it, and heartbeats carry liveness. Its answer cost the follower a send
    // and the leader a wake-up per commit, i.e. per write at one write in flight. After a lost
    // acknowledgement (sentCommit = -1, see handleHeartbeatResponse) the answer is what we need.
    const commitOnly = entries.length === 0 && progress.state === "replicate" && progress.sentCommit >= 0;
    node.send({
      type: "append",
      from: node.id,
      to: peer,
      term: node.term,
      prevIndex,
      prevTerm,
      entries,
      commit: node.commit,
      commitOnly,
    });
    progress.sentCommit = node.commit;
    progress.sent(
      prevIndex + entries.length,
      entries.reduce((sum, entry) => sum + entryBytes(entry), 0),
    );
    if (progress.state === "probe" || entries.length === 0) return;
  }
}

function sendSnapshotChunk(node: RaftNode, peer: NodeId, progress: Progress): void {
  const transfer = progress.snapshot;
  assert(transfer !== null, "snapshot state without a transfer");
  if (transfer.inFlightBytes > 0) return;
  const read = node.options.readSnapshot;
  assert(read !== undefined, "a snapshot must be sent but no readSnapshot was configured");
  const data = read(transfer.meta, transfer.offset, node.settings.snapshotChunkBytes);
  const done = transfer.offset + data.byteLength >= transfer.meta.sizeBytes;
  node.send({
    type: "snapshot",
    from: node.id,
    to: peer,
    term: node.term,
    meta: transfer.meta,
    offset: transfer.offset,
    data,
    done,
  });
  transfer.inFlightBytes = Math.max(1, data.byteLength);
  transfer.idleTicks = 0;
}

export function handleAppendResponse(node: RaftNode, message: AppendResponse): void {
  if (node.role !== "leader") return;
  const progress = node.progress.get(message.from);
  if (!progress) return;
  progress.recentActive = true;
  if (message.success) {
    const moved = progress.acknowledge(message.matchIndex);
    if (progress.state === "probe") progress.becomeReplicate();
    if (moved) maybeCommit(node);
    if (node.transferee === message.from && progress.match === node.log.lastIndex()) {
      node.sendTimeoutNow(message.from);
    }
    node.pendingBroadcast = true;
    return;
  }
  if (message.rejectedIndex <= progress.match) return; // stale
  if (progress.state === "probe" && message.rejectedIndex !== progress.next - 1) return; // stale
  progress.next = Math.max(
    progress.match + 1,
    Math.min(nextAfterRejection(node, message), message.rejectedIndex),
  );
  progress.becomeProbe();
  node.pendingBroadcast = true;
}

/** Where to try next after a rejection, from the follower's hints. */
function nextAfterRejection(node: RaftNode, message: AppendResponse): number {
  if (message.conflictTerm > 0) {
    // If we have entries of the conflicting term, the follower may match up to our last one.
    const { log } = node;
    for (let index = Math.min(message.rejectedIndex, log.lastIndex()); index > log.baseIndex; index--) {
      const term = log.term(index) as number;
      if (term === message.conflictTerm) return index + 1;
      if (term < message.conflictTerm) break;
    }
  }
  return message.conflictIndex;
}

export function handleHeartbeatResponse(node: RaftNode, message: HeartbeatResponse): void {
  if (node.role !== "leader") return;
  const progress = node.progress.get(message.from);
  if (!progress) return;
  progress.recentActive = true;
  progress.probeSent = false;
  if (progress.state === "replicate" && progress.match < node.log.lastIndex()) {
    // Nothing else retries a lost append or a lost acknowledgement in replicate state. Forgetting
    // which commit the follower knows makes the broadcast send an append at next-1 even without new
    // entries: the follower acknowledges it (match moves) or rejects it (probe, then resend). One
    // in-flight slot is freed so that this works when lost appends filled the window (as etcd does).
    progress.sentCommit = -1;
    progress.inflight.shift();
  }
  if (progress.match < node.log.lastIndex() || progress.sentCommit < node.commit)
    node.pendingBroadcast = true;
  node.reads.acknowledge(node, message.from, message.round);
}

export function handleSnapshotResponse(node: RaftNode, message: SnapshotResponse): void {
  if (node.role !== "leader") return;
  const progress = node.progress.get(message.from);
  if (!progress) return;
  progress.recentActive = true;
  const transfer = progress.snapshot;
  if (progress.state !== "snapshot" || transfer === null || transfer.meta.index !== message.snapshotIndex)
    return;
  transfer.inFlightBytes = 0;
  transfer.offset = message.rejected ? 0 : message.nextOffset;
  if (!message.rejected && message.nextOffset >= transfer.meta.sizeBytes) {
    progress.acknowledge(transfer.meta.index);
    progress.becomeProbe();
  }
  node.pendingBroadcast = true;
}

/**
 * Durable notices (types.ts, DurableNotice): after a Ready that appended entries, the leader
 * tells each voter follower in replicate state how far its own log is durable, once it is. Only
 * where the leader and one follower are a quorum (at most three voters). The host may leave out
 * notices that no member needs (src/runtime sends one only to a member that forwarded a write it
 * covers). Returns the index announced, or 0 when none was sent.
 */
export function sendDurableNotices(node: RaftNode, durableIndex: number): number {
  let sent = 0;
  for (const [peer, progress] of node.progress) {
    if (progress.state !== "replicate" || !leaderAndFollowerAreQuorum(node.membership, node.id, peer))
      continue;
    node.send({ type: "durable", from: node.id, to: peer, term: node.term, index: durableIndex });
    sent = durableIndex;
  }
  return sent;
}

/** Advances the commit index to what a quorum of voters holds, counting only current-term entries (§5.4.2). */
export function maybeCommit(node: RaftNode): void {
  const quorumIndex = quorumMatchIndex(node.membership.voters, (voter) =>
    voter === node.id ? node.log.lastIndex() : (node.progress.get(voter)?.match ?? 0),
  );
  if (quorumIndex <= node.commit) return;
  const oldTermAllowed = node.settings.mutations.has("commit-old-term-entries");
  if (node.log.term(quorumIndex) !== node.term && !oldTermAllowed) return;
  const wasCommittedInTerm = node.committedInCurrentTerm();
  node.commit = quorumIndex;
  node.pendingBroadcast = true;
  if (!wasCommittedInTerm) node.reads.leaderReady(node);
  // A leader removed from the voters leads until its removal commits, then hands over (thesis §4.2.2).
  if (!isVoter(node.membership, node.id) && node.membershipIndex <= node.commit) {
    const successor = mostCaughtUpVoter(node);
    if (successor !== null) node.sendTimeoutNow(successor);
    node.becomeFollower(node.term, null);
  }
}

function mostCaughtUpVoter(node: RaftNode): NodeId | null {
  let best: NodeId | null = null;
  let bestMatch = -1;
  for (const voter of node.membership.voters) {
    const match = node.progress.get(voter)?.match ?? -1;
    if (voter !== node.id && match > bestMatch) {
      best = voter;
      bestMatch = match;
    }
  }
  return best;
}

// ------------------------------------------------------------------ follower side

function followLeader(node: RaftNode, leader: NodeId): void {
  if (node.role !== "follower" || node.leader !== leader) node.becomeFollower(node.term, leader);
  node.electionElapsed = 0;
}

export function handleAppend(node: RaftNode, message: AppendRequest): void {
  followLeader(node, message.from);
  node.incomingSnapshot = null;
  const { log } = node;
  const reply = (fields: Partial<AppendResponse>): void =>
    node.send({
      type: "append-response",
      from: node.id,
      to: message.from,
      term: node.term,
      success: false,
      matchIndex: 0,
      rejectedIndex: 0,
      conflictIndex: 0,
      conflictTerm: 0,
      lastIndex: log.lastIndex(),
      ...fields,
    });
  const lastNew = message.prevIndex + message.entries.length;
  if (message.prevIndex < node.commit) {
    // Our log matches the leader's up to our commit index; only what follows may need merging.
    const fresh = message.entries.filter((entry) => entry.index > node.commit);
    if (fresh.length > 0) log.merge(fresh, node.commit);
  } else if (log.matchTerm(message.prevIndex, message.prevTerm)) {
    log.merge(message.entries, node.commit);
  } else {
    const hint = conflictHint(node, message.prevIndex);
    reply({ rejectedIndex: message.prevIndex, ...hint, lastIndex: log.lastIndex() });
    return;
  }
  node.onLogChanged();
  const matchIndex = Math.max(lastNew, Math.min(node.commit, log.lastIndex()));
  const newCommit = Math.min(message.commit, lastNew);
  if (newCommit > node.commit) node.commit = newCommit;
  if (message.commitOnly === true && message.entries.length === 0) return;
  reply({ success: true, matchIndex, lastIndex: log.lastIndex() });
}

/** Fast back-off hint: the term at prevIndex and the first index we hold of that term. */
function conflictHint(node: RaftNode, prevIndex: number): { conflictIndex: number; conflictTerm: number } {
  const { log } = node;
  if (prevIndex > log.lastIndex()) return { conflictIndex: log.lastIndex() + 1, conflictTerm: 0 };
  const conflictTerm = log.term(prevIndex) as number;
  let first = prevIndex;
  while (first - 1 > log.baseIndex && log.term(first - 1) === conflictTerm) first--;
  return { conflictIndex: Math.max(first, node.commit + 1), conflictTerm };
}

/**
 * The leader's log is durable through `message.index`. Where the leader and this member are a
 * quorum, an entry of the current term that this member's log also holds is committed once this
 * member's own write of it is durable (§5.4.2 counts replicas, not what the leader has heard).
 * The commit index may name entries this member is still writing: the runtime applies a Ready's
 * committed entries only once that Ready is durable here (the Ready contract), so nothing is
 * applied, or answered, before it is on both disks. A leader's reads account for what its
 * notices announced (read-index.ts), so a write answered this way is never missing from a
 * linearizable read.
 */
export function handleDurableNotice(node: RaftNode, message: DurableNotice): void {
  followLeader(node, message.from);
  if (!leaderAndFollowerAreQuorum(node.membership, message.from, node.id)) return;
  // Entries of the current term came from this leader, so our log matches its log up to them.
  const index = Math.min(message.index, node.log.lastIndex());
  if (index <= node.commit || node.log.term(index) !== node.term) return;
  node.commit = index;
}

export function handleHeartbeat(node: RaftNode, message: Heartbeat): void {
  followLeader(node, message.from);
  // The leader sends min(our match, its commit), so everything up to it is in our log.
  const commit = Math.min(message.commit, node.log.lastIndex());
  if (commit > node.commit) node.commit = commit;
  node.send({
    type: "heartbeat-response",
    from: node.id,
    to: message.from,
    term: node.term,
    round: message.round,
    lastIndex: node.log.lastIndex(),
  });
}

export function handleSnapshot(node: RaftNode, message: SnapshotChunk): void {
  followLeader(node, message.from);
  const { meta } = message;
  const reply = (nextOffset: number, rejected: boolean): void =>
    node.send({
      type: "snapshot-response",
      from: node.id,
      to: message.from,
      term: node.term,
      snapshotIndex: meta.index,
      nextOffset,
      rejected,
    });
  if (meta.index <= node.commit) {
    node.incomingSnapshot = null;
    reply(meta.sizeBytes, false); // we already have everything it holds
    return;
  }
  if (message.offset === 0) node.incomingSnapshot = { meta, nextOffset: 0 };
  const incoming = node.incomingSnapshot;
  const same = incoming !== null && incoming.meta.index === meta.index && incoming.meta.term === meta.term;
  if (!same || message.offset !== incoming.nextOffset) {
    reply(same ? incoming.nextOffset : 0, !same);
    return;
  }
  node.emitSnapshotChunk({ meta, offset: message.offset, data: message.data, done: message.done });
  incoming.nextOffset += message.data.byteLength;
  if (message.done) {
    assert(
      incoming.nextOffset === meta.sizeBytes,
      () => `snapshot ends at ${incoming.nextOffset}, expected ${meta.sizeBytes}`,
    );
    node.log.restore(meta);
    node.latestSnapshot = meta;
    node.commit = Math.max(node.commit, meta.index);
    node.applied = meta.index; // the runtime installs the snapshot before applying anything after it
    node.snapshotToInstall = meta;
    node.incomingSnapshot = null;
    node.onLogChanged();
  }
  reply(incoming.nextOffset, false);
}
