/**
 * One Raft member as a pure state machine (etcd-raft's shape): inputs are `step(message)`,
 * `tick()` and the client calls (`propose`, `proposeMembership`, `transferLeadership`,
 * `readIndex`); outputs pile up in a {@link Ready} batch that the runtime takes with `ready()`,
 * handles in the order persist → send → apply, and acknowledges with `advance()`.
 * See DESIGN.md for the contract. No IO, no clock, no randomness but the injected Prng.
 *
 * @example
 * ```ts
 * const node = new RaftNode({ id: "a", prng: new Prng(1), electionTimeoutTicks: 10, heartbeatTicks: 1 },
 *   RaftNode.bootstrap({ voters: ["a"], learners: [] }));
 * node.campaign();
 * const ready = node.ready(); // persist ready.entries + ready.hardState, send ready.messages, apply ready.committed
 * node.advance();
 * ```
 */
import { assert } from "../lib/assert.ts";
import type {
  IncomingSnapshotChunk,
  RaftInitialState,
  RaftMutation,
  RaftOptions,
  RaftRefusal,
  RaftResult,
  RaftStatus,
  Ready,
  SoftState,
} from "./api-types.ts";
import { handleVote, handleVoteResponse, startElection } from "./election.ts";
import { RaftLog } from "./log.ts";
import { applyChange, isVoter, type MembershipChange, peersOf } from "./membership.ts";
import { Progress } from "./progress.ts";
import { ReadTracker } from "./read-index.ts";
import {
  handleAppend,
  handleAppendResponse,
  handleDurableNotice,
  handleHeartbeat,
  handleHeartbeatResponse,
  handleSnapshot,
  handleSnapshotResponse,
  maybeCommit,
  sendAppends,
  sendDurableNotices,
} from "./replication.ts";
import type { HardState, Membership, Message, NodeId, Role, SnapshotMeta } from "./types.ts";

interface Settings {
  preVote: boolean;
  checkQuorum: boolean;
  inflightMax: number;
  inflightBytesMax: number;
  appendEntriesMax: number;
  appendBytesMax: number;
  snapshotChunkBytes: number;
  uncommittedEntriesMax: number;
  committedPerReadyMax: number;
  leaseDriftTicks: number | null;
  mutations: ReadonlySet<RaftMutation>;
}

export class RaftNode {
  readonly id: NodeId;
  /** @internal */ readonly options: RaftOptions;
  /** @internal */ readonly settings: Settings;
  /** @internal */ readonly log: RaftLog;
  /** @internal */ term = 0;
  /** @internal */ vote: NodeId | null = null;
  /** @internal */ commit = 0;
  /** @internal */ applied = 0;
  /** @internal */ role: Role = "follower";
  /** @internal */ leader: NodeId | null = null;
  /** @internal */ membership: Membership;
  /** @internal */ membershipIndex: number;
  /** @internal Ticks since the last valid leader contact (followers) or since the last quorum check (leader). */
  electionElapsed = 0;
  /** @internal */ randomizedElectionTimeout = 0;
  /** @internal */ heartbeatElapsed = 0;
  /** @internal Monotonic tick counter (leases). */
  now = 0;
  /** @internal Votes received in the current (pre-)election. */
  votes = new Map<NodeId, boolean>();
  /** @internal Leader only: one per peer. */
  progress = new Map<NodeId, Progress>();
  /** @internal */ transferee: NodeId | null = null;
  /** @internal */ transferElapsed = 0;
  /** @internal A membership entry at an index above `commit` is still pending. */
  pendingMembershipIndex = 0;
  /** @internal */ latestSnapshot: SnapshotMeta | null;
  /** @internal Follower: the snapshot being received. */
  incomingSnapshot: { meta: SnapshotMeta; nextOffset: number } | null = null;
  /** @internal Leader: entries or commit to send. */
  pendingBroadcast = false;
  /**
   * @internal Leader: the highest index its durable notices announced in this term (0: none).
   * Followers may commit up to it without the leader's commit index, so reads wait for it too.
   */
  durableNoticeIndex = 0;
  /** @internal */ readonly reads: ReadTracker;

  /** @internal */ outbox: Message[] = [];
  #chunksOut: IncomingSnapshotChunk[] = [];
  /** @internal */ snapshotToInstall: SnapshotMeta | null = null;
  #persisted: HardState;
  #lastSoft: SoftState;
  #inReady = false;
  /** Lease reads are on and this node has answered a leader before (term ≥ 2 on disk): see #acceptHigherTerm. */
  readonly #restartedWithLeases: boolean;
  #advanceTo: { stable: number; applied: number; hardState: HardState } | null = null;

  constructor(options: RaftOptions, initial: RaftInitialState) {
    assert(
      options.electionTimeoutTicks > options.heartbeatTicks,
      "election timeout must exceed the heartbeat",
    );
    assert(options.heartbeatTicks >= 1, "heartbeatTicks must be at least 1");
    assert((options.electionJitterTicks ?? 1) >= 1, "electionJitterTicks must be at least 1");
    this.id = options.id;
    this.options = options;
    this.settings = {
      preVote: options.preVote ?? true,
      checkQuorum: options.checkQuorum ?? true,
      inflightMax: options.inflightMax ?? 256,
      inflightBytesMax: options.inflightBytesMax ?? 8 * 1024 * 1024,
      appendEntriesMax: options.appendEntriesMax ?? 4096,
      appendBytesMax: options.appendBytesMax ?? 1024 * 1024,
      snapshotChunkBytes: options.snapshotChunkBytes ?? 1024 * 1024,
      uncommittedEntriesMax: options.uncommittedEntriesMax ?? 65_536,
      committedPerReadyMax: options.committedPerReadyMax ?? 8192,
      leaseDriftTicks: options.leaseDriftTicks ?? null,
      mutations: new Set(options.mutations ?? []),
    };
    this.log = new RaftLog(initial.snapshot, initial.entries);
    this.latestSnapshot = initial.snapshot;
    const hard = initial.hardState ?? { term: 0, vote: null, commit: 0 };
    this.term = hard.term;
    this.vote = hard.vote;
    this.commit = Math.max(hard.commit, initial.snapshot?.index ?? 0);
    assert(
      this.commit <= this.log.lastIndex(),
      () => `commit ${this.commit} beyond last index ${this.log.lastIndex()}`,
    );
    this.applied = initial.applied ?? initial.snapshot?.index ?? 0;
    assert(this.applied <= this.commit, () => `applied ${this.applied} beyond commit ${this.commit}`);
    const current = this.log.membershipAt(this.log.lastIndex());
    this.membership = current.membership;
    this.membershipIndex = current.index;
    this.#persisted = { term: this.term, vote: this.vote, commit: this.commit };
    this.#lastSoft = { role: this.role, leader: this.leader, term: this.term };
    this.reads = new ReadTracker();
    // The first leader's term is at least 2 (bootstrap writes term 1), so a node that ever
    // acknowledged a leader has persisted a term of 2 or more.
    this.#restartedWithLeases = this.settings.leaseDriftTicks !== null && hard.term >= 2;
    this.resetElectionTimer();
  }

  /** The initial state of a brand-new cluster: every founding member starts from this same entry. */
  static bootstrap(membership: Membership): RaftInitialState {
    assert(membership.voters.length > 0, "a cluster needs at least one voter");
    return {
      hardState: { term: 1, vote: null, commit: 1 },
      snapshot: null,
      entries: [{ kind: "config", index: 1, term: 1, membership }],
    };
  }

  // ---------------------------------------------------------------- inputs

  /** Advances logical time by one tick. */
  tick(): void {
    this.#assertNotInReady();
    this.now++;
    if (this.role === "leader") this.#tickLeader();
    else this.#tickFollower();
  }

  /** Handles one message from a peer. */
  step(message: Message): void {
    this.#assertNotInReady();
    if (message.to !== this.id) return;
    if (message.term > this.term) {
      if (!this.#acceptHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.#answerStaleTerm(message);
      return;
    }
    this.#dispatch(message);
  }

  /** Appends a command to the log (leader only). The entry is committed if and when `committed` delivers it. */
  propose(data: Uint8Array): RaftResult<{ index: number; term: number }> {
    this.#assertNotInReady();
    const refused = this.#refuseWrite();
    if (refused) return refused;
    if (this.log.lastIndex() - this.commit >= this.settings.uncommittedEntriesMax)
      return this.#refusal("busy");
    const index = this.log.lastIndex() + 1;
    this.log.append([{ kind: "command", index, term: this.term, data }]);
    this.#afterLeaderAppend();
    return { ok: true, index, term: this.term };
  }

  /** Proposes a single-server membership change (leader only; one at a time). */
  proposeMembership(change: MembershipChange): RaftResult<{ index: number; term: number }> {
    this.#assertNotInReady();
    const refused = this.#refuseWrite();
    if (refused) return refused;
    if (!this.committedInCurrentTerm()) return this.#refusal("leader-not-ready");
    if (this.pendingMembershipIndex > this.commit) return this.#refusal("membership-change-pending");
    const next = applyChange(this.membership, change);
    if (typeof next === "string") return { ...this.#refusal("invalid"), message: next };
    const index = this.log.lastIndex() + 1;
    this.log.append([{ kind: "config", index, term: this.term, membership: next }]);
    this.pendingMembershipIndex = index;
    this.onLogChanged();
    this.#afterLeaderAppend();
    return { ok: true, index, term: this.term };
  }

  /** Starts a planned leadership transfer to `target` (a voter); proposals pause meanwhile. */
  transferLeadership(target: NodeId): RaftResult {
    this.#assertNotInReady();
    if (this.role !== "leader") return this.#refusal("not-leader");
    if (target === this.id) return { ok: true };
    if (!isVoter(this.membership, target)) {
      return { ...this.#refusal("invalid"), message: `${target} is not a voter` };
    }
    this.transferee = target;
    this.transferElapsed = 0;
    const progress = this.progress.get(target);
    if (progress && progress.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.pendingBroadcast = true;
    return { ok: true };
  }

  /**
   * Asks to confirm leadership for a linearizable read (ReadIndex, thesis §6.4). The answer comes
   * in a later Ready: in `reads` (serve once applied ≥ index) or `readsFailed`.
   */
  readIndex(requestId: number): RaftResult {
    this.#assertNotInReady();
    if (this.role !== "leader") return this.#refusal("not-leader");
    this.reads.request(this, requestId);
    return { ok: true };
  }

  /** Starts an election now (tests, and a one-node cluster that should not wait a timeout). */
  campaign(): void {
    this.#assertNotInReady();
    if (this.role !== "leader") startElection(this, this.settings.preVote, false);
  }

  /** Where {@link compact} may cut behind a snapshot at `index`, keeping at most that many entries and bytes. */
  compactionPointKeeping(index: number, entriesMax: number, bytesMax: number): number {
    return this.log.compactionPointKeeping(index, entriesMax, bytesMax);
  }

  /**
   * Tells the core that the state machine took a snapshot described by `meta` (index ≤ applied),
   * so the log up to `compactIndex` (default: meta.index) may be discarded.
   */
  compact(meta: SnapshotMeta, compactIndex = meta.index): void {
    this.#assertNotInReady();
    assert(meta.index <= this.applied, () => `snapshot at ${meta.index} beyond applied ${this.applied}`);
    assert(compactIndex <= meta.index, "cannot compact beyond the snapshot");
    if (this.latestSnapshot && meta.index <= this.latestSnapshot.index) return;
    this.latestSnapshot = meta;
    this.log.compact(compactIndex, this.log.membershipAt(compactIndex).membership);
    // Transfers of an older snapshot restart with this one (the old one may be deleted). A host
    // that gives its own copies to send (snapshotForTransfer) keeps them while they are sent.
    if (this.options.snapshotForTransfer !== undefined) return;
    for (const progress of this.progress.values()) {
      if (progress.state === "snapshot") progress.becomeSnapshot(meta);
    }
  }

  // ---------------------------------------------------------------- outputs

  /**
   * True when this node leads and `index` is not committed yet: entries up to it wait for a
   * quorum's answers (the runtime's commit wait, RaftRuntimeOptions.commitWaitMs).
   */
  leadsUncommitted(index: number): boolean {
    return this.role === "leader" && this.commit < index;
  }

  /**
   * Ticks until this node would start an election (at least 1), or null while it leads (every
   * tick of a leader matters: heartbeats, check-quorum). A learner never campaigns: one election
   * timeout. Lets the host wake a follower for its timeout only, not at every tick: a tick that
   * comes later is not lost (the host counts ticks from elapsed time), and heartbeats only push
   * the timeout back.
   */
  ticksUntilElectionTimeout(): number | null {
    if (this.role === "leader") return null;
    if (!this.promotable()) return this.options.electionTimeoutTicks;
    return Math.max(1, this.randomizedElectionTimeout - this.electionElapsed);
  }

  /** True when `ready()` would return something to do. */
  hasReady(): boolean {
    return (
      this.outbox.length > 0 ||
      this.log.stableIndex < this.log.lastIndex() ||
      this.commit > this.applied ||
      // Only a leader's ready() consumes a pending broadcast (a leader that stepped down may leave it set).
      (this.pendingBroadcast && this.role === "leader") ||
      this.reads.hasOutput(this) ||
      this.#chunksOut.length > 0 ||
      this.snapshotToInstall !== null ||
      !sameHardState(this.#hardState(), this.#persisted) ||
      !sameSoftState(this.#softState(), this.#lastSoft)
    );
  }

  /** Takes the next batch of work. Call `advance()` once it is handled; no other call in between. */
  ready(): Ready {
    this.#assertNotInReady();
    if (this.role === "leader") {
      this.reads.startRoundIfNeeded(this);
      if (this.pendingBroadcast) {
        this.pendingBroadcast = false;
        sendAppends(this);
      }
    }
    const entries = this.log.unstable();
    // Sent by the host once this Ready is durable (src/runtime/ready-order.ts), like an answer.
    if (this.role === "leader" && entries.length > 0) {
      const announced = sendDurableNotices(this, this.log.lastIndex());
      if (announced > 0) this.durableNoticeIndex = announced;
    }
    const committedTo = Math.min(
      this.commit,
      this.log.lastIndex(),
      this.applied + this.settings.committedPerReadyMax,
    );
    const committed = committedTo > this.applied ? this.log.slice(this.applied + 1, committedTo) : [];
    const hardState = this.#hardState();
    const softState = this.#softState();
    const ready: Ready = {
      softState: sameSoftState(softState, this.#lastSoft) ? null : softState,
      hardState: sameHardState(hardState, this.#persisted) ? null : hardState,
      entries,
      snapshotChunks: this.#chunksOut,
      snapshot: this.snapshotToInstall,
      messages: this.outbox,
      committed,
      reads: this.reads.takeReady(),
      readsFailed: this.reads.takeFailed(),
    };
    this.#lastSoft = softState;
    this.outbox = [];
    this.#chunksOut = [];
    this.snapshotToInstall = null;
    this.#inReady = true;
    this.#advanceTo = {
      stable: this.log.lastIndex(),
      applied: Math.max(this.applied, committedTo),
      hardState,
    };
    return ready;
  }

  /** Acknowledges that the last Ready was persisted, sent and applied. */
  advance(): void {
    assert(this.#inReady && this.#advanceTo, "advance() without a pending ready()");
    this.log.stableIndex = Math.max(this.log.stableIndex, this.#advanceTo.stable);
    this.applied = this.#advanceTo.applied;
    this.#persisted = this.#advanceTo.hardState;
    this.#advanceTo = null;
    this.#inReady = false;
  }

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      leader: this.leader,
      term: this.term,
      vote: this.vote,
      commit: this.commit,
      applied: this.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      logBytes: this.log.bytes(),
      membership: this.membership,
      transferee: this.transferee,
      durableNoticeIndex: this.role === "leader" ? this.durableNoticeIndex : 0,
      peers: [...this.progress].map(([id, p]) => ({
        id,
        match: p.match,
        next: p.next,
        state: p.state,
        recentActive: p.recentActive,
      })),
    };
  }

  // ---------------------------------------------------------------- internal transitions

  /** @internal */
  becomeFollower(term: number, leader: NodeId | null): void {
    if (term > this.term) {
      this.term = term;
      this.vote = null;
    }
    if (this.role === "leader") this.reads.failAll();
    this.role = "follower";
    this.leader = leader;
    this.progress.clear();
    this.transferee = null;
    this.votes.clear();
    this.electionElapsed = 0;
    this.resetElectionTimer();
  }

  /** @internal */
  becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader");
    this.role = "leader";
    this.leader = this.id;
    this.votes.clear();
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.progress.clear();
    this.durableNoticeIndex = 0;
    for (const peer of peersOf(this.membership, this.id))
      this.progress.set(peer, new Progress(this.log.lastIndex() + 1));
    // A leader commits nothing from earlier terms directly (§5.4.2): its no-op makes them committed.
    this.log.append([{ kind: "noop", index: this.log.lastIndex() + 1, term: this.term }]);
    // No membership change until an entry of this term is committed (the no-op).
    this.pendingMembershipIndex = this.log.lastIndex();
    this.pendingBroadcast = true;
    maybeCommit(this);
  }

  /** @internal Recomputes membership after the log changed (configuration takes effect when appended). */
  onLogChanged(): void {
    const current = this.log.membershipAt(this.log.lastIndex());
    if (current.index === this.membershipIndex) return;
    this.membership = current.membership;
    this.membershipIndex = current.index;
    if (this.role !== "leader") return;
    const peers = new Set(peersOf(this.membership, this.id));
    for (const id of this.progress.keys()) if (!peers.has(id)) this.progress.delete(id);
    for (const id of peers)
      if (!this.progress.has(id)) this.progress.set(id, new Progress(this.log.lastIndex() + 1));
  }

  /** @internal */
  committedInCurrentTerm(): boolean {
    return this.log.term(this.commit) === this.term;
  }

  /** @internal */
  send(message: Message): void {
    this.outbox.push(message);
  }

  /** @internal */
  sendTimeoutNow(target: NodeId): void {
    // The target's election skips leader stickiness, which is what the lease relies on.
    this.reads.revokeLease();
    this.send({ type: "timeout-now", from: this.id, to: target, term: this.term });
  }

  /** @internal */
  emitSnapshotChunk(chunk: IncomingSnapshotChunk): void {
    this.#chunksOut.push(chunk);
  }

  /** @internal */
  resetElectionTimer(): void {
    const base = this.options.electionTimeoutTicks;
    this.randomizedElectionTimeout =
      base + this.options.prng.nextInt(this.options.electionJitterTicks ?? base);
  }

  /** @internal A node may campaign only as a voter of the configuration it knows. */
  promotable(): boolean {
    return isVoter(this.membership, this.id);
  }

  #tickFollower(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      startElection(this, this.settings.preVote, false);
    }
  }

  #tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.options.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.settings.checkQuorum && !this.#quorumActive()) {
        this.becomeFollower(this.term, null);
        return;
      }
      for (const progress of this.progress.values()) progress.recentActive = false;
    }
    if (this.transferee !== null && ++this.transferElapsed >= this.options.electionTimeoutTicks) {
      this.transferee = null; // gave up: the target did not take over in time
    }
    for (const progress of this.progress.values()) {
      if (progress.snapshot && progress.snapshot.inFlightBytes > 0) {
        if (++progress.snapshot.idleTicks >= this.options.electionTimeoutTicks) {
          progress.snapshot.inFlightBytes = 0; // chunk lost: resend it
          this.pendingBroadcast = true;
        }
      }
    }
    if (this.heartbeatElapsed >= this.options.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.reads.broadcastHeartbeat(this);
    }
  }

  #quorumActive(): boolean {
    let active = 0;
    for (const voter of this.membership.voters) {
      if (voter === this.id || this.progress.get(voter)?.recentActive) active++;
    }
    return active >= Math.floor(this.membership.voters.length / 2) + 1;
  }

  /** Returns false when a message of a higher term must be ignored. */
  #acceptHigherTerm(message: Message): boolean {
    if (message.type === "vote") {
      // Leader stickiness (thesis §4.2.3): while we hear from a leader, ignore candidates, unless
      // the leader itself asked for this election (transfer).
      const electionTimeout = this.options.electionTimeoutTicks;
      const hearingLeader = this.leader !== null && this.electionElapsed < electionTimeout;
      // With lease reads, a node that restarted may have acknowledged a leader's lease before it
      // went down and forgot: it stays quiet for one election timeout, as if it still heard that
      // leader. (Otherwise a restarted voter can help elect a new leader while the old one still
      // serves lease reads; etcd has the same hole.)
      const mayHoldLease = this.#restartedWithLeases && this.now < electionTimeout;
      const inLease = this.settings.checkQuorum && (hearingLeader || mayHoldLease);
      if (inLease && !message.transfer) return false;
      if (message.preVote) return true; // a pre-vote changes nobody's term
      this.becomeFollower(message.term, null);
      return true;
    }
    if (message.type === "vote-response" && message.preVote && message.granted) return true;
    const fromLeader =
      message.type === "append" ||
      message.type === "heartbeat" ||
      message.type === "snapshot" ||
      message.type === "durable";
    this.becomeFollower(message.term, fromLeader ? message.from : null);
    return true;
  }

  #answerStaleTerm(message: Message): void {
    if (message.type === "append" || message.type === "heartbeat") {
      // Tell a deposed leader about the newer term so it steps down.
      this.send({
        type: "append-response",
        from: this.id,
        to: message.from,
        term: this.term,
        success: false,
        matchIndex: 0,
        rejectedIndex: 0,
        conflictIndex: 0,
        conflictTerm: 0,
        lastIndex: this.log.lastIndex(),
      });
    } else if (message.type === "vote" && message.preVote) {
      this.send({
        type: "vote-response",
        from: this.id,
        to: message.from,
        term: this.term,
        preVote: true,
        granted: false,
      });
    }
  }

  #dispatch(message: Message): void {
    switch (message.type) {
      case "vote":
        handleVote(this, message);
        break;
      case "vote-response":
        handleVoteResponse(this, message);
        break;
      case "append":
        handleAppend(this, message);
        break;
      case "append-response":
        handleAppendResponse(this, message);
        break;
      case "heartbeat":
        handleHeartbeat(this, message);
        break;
      case "heartbeat-response":
        handleHeartbeatResponse(this, message);
        break;
      case "snapshot":
        handleSnapshot(this, message);
        break;
      case "snapshot-response":
        handleSnapshotResponse(this, message);
        break;
      case "timeout-now":
        if (this.promotable()) startElection(this, false, true);
        break;
      case "durable":
        handleDurableNotice(this, message);
        break;
    }
  }

  #refuseWrite(): RaftResult<never> | null {
    if (this.role !== "leader") return this.#refusal("not-leader");
    if (this.transferee !== null) return this.#refusal("transferring");
    return null;
  }

  #refusal(reason: RaftRefusal): { ok: false; reason: RaftRefusal; leader: NodeId | null } {
    return { ok: false, reason, leader: this.leader };
  }

  #afterLeaderAppend(): void {
    this.pendingBroadcast = true;
    maybeCommit(this);
  }

  #hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.commit };
  }

  #softState(): SoftState {
    return { role: this.role, leader: this.leader, term: this.term };
  }

  #assertNotInReady(): void {
    assert(!this.#inReady, "the core was called between ready() and advance()");
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term;
}
