/**
 * A small deterministic in-memory cluster for scenario tests of the Raft core (not the
 * randomized simulator of src/sim): messages wait in one FIFO queue until the test delivers
 * them, links are cut by partitions, and each node's Ready is handled the way DESIGN.md asks
 * (persist → send → apply → advance) right after every input, so a transcript shows each role
 * change in causal order. The "disk" (hard state, entries, snapshot) survives `crash()`; the
 * state machine and everything the core held in memory does not.
 *
 * Cheap cross-node invariants are checked on the fly: at most one leader per term, and every
 * node applies the same entry at a given index.
 */
import assert from "node:assert/strict";
import { Prng } from "../../src/lib/prng.ts";
import {
  type Message,
  type NodeId,
  RaftNode,
  type RaftOptions,
  type RaftResult,
  type SnapshotMeta,
  type SoftState,
} from "../../src/raft/index.ts";
import { encodeCommand, KvStore } from "./kv-store.ts";
import { applyReady, type Member, newMember, persistReady, type ReadOutcome } from "./member.ts";
import { describeMessage, type MessageType } from "./transcript.ts";

export type { ReadOutcome } from "./member.ts";

/** RaftOptions every node of a cluster shares (id, prng and readSnapshot are the harness's). */
export type SharedRaftOptions = Partial<Omit<RaftOptions, "id" | "prng" | "readSnapshot">>;

export interface ClusterOptions {
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly seed?: number;
  readonly raft?: SharedRaftOptions;
  /** Messages recorded in the transcript when delivered or dropped: these types, or those matching (none by default). */
  readonly trace?: readonly MessageType[] | ((message: Message) => boolean);
}

type DropRule = { matches: (message: Message) => boolean; remaining: number };

const readyBatchesMax = 64;
const deliveriesMax = 200_000;

export class Cluster {
  /** Logical time: the number of `tickAll` rounds so far. */
  time = 0;
  readonly #options: ClusterOptions;
  readonly #members = new Map<NodeId, Member>();
  readonly #queue: Message[] = [];
  readonly #lines: string[] = [];
  readonly #traced: (message: Message) => boolean;
  #groups: Map<NodeId, number> | null = null;
  #dropRules: DropRule[] = [];
  readonly #leaderOfTerm = new Map<number, NodeId>();
  readonly #appliedAt = new Map<number, string>();
  #nextReadId = 1;

  constructor(options: ClusterOptions) {
    this.#options = options;
    const trace = options.trace ?? [];
    this.#traced = typeof trace === "function" ? trace : (message) => trace.includes(message.type);
    const membership = { voters: options.voters, learners: options.learners ?? [] };
    for (const id of [...membership.voters, ...membership.learners]) {
      this.#addMember(id, RaftNode.bootstrap(membership));
    }
  }

  // ------------------------------------------------------------ membership of the harness

  /** Adds a node that joins later: empty state, it learns everything from the leader. */
  addNode(id: NodeId): void {
    this.#addMember(id, { hardState: null, snapshot: null, entries: [] });
  }

  get ids(): NodeId[] {
    return [...this.#members.keys()];
  }

  /** The live core of `id` (fails if it is crashed). */
  node(id: NodeId): RaftNode {
    const raft = this.#member(id).raft;
    assert(raft !== null, `${id} is crashed`);
    return raft;
  }

  /** The state machine of `id` as a plain object. */
  applied(id: NodeId): Record<string, string> {
    return this.#member(id).kv.toObject();
  }

  appliedIndex(id: NodeId): number {
    return this.#member(id).kv.appliedIndex;
  }

  /** The only live leader of the highest term, or null. */
  leader(): NodeId | null {
    let best: RaftNode | null = null;
    for (const member of this.#members.values()) {
      const raft = member.raft;
      if (raft?.status().role === "leader" && (best === null || raft.status().term > best.status().term))
        best = raft;
    }
    return best?.id ?? null;
  }

  /** Makes `id` campaign now and delivers until quiet; asserts that it won. */
  elect(id: NodeId): void {
    this.on(id, (raft) => raft.campaign());
    this.deliverAll();
    assert.equal(this.leader(), id, `${id} did not win the election`);
  }

  // ------------------------------------------------------------ time and messages

  /** `rounds` times: every live node ticks once, then every message is delivered. */
  tickAll(rounds = 1): void {
    for (let round = 0; round < rounds; round++) {
      this.time++;
      for (const member of this.#members.values()) {
        if (member.raft === null) continue;
        member.raft.tick();
        this.#handleReadies(member);
      }
      this.deliverAll();
    }
  }

  /** Ticks until `done()` holds, at most `roundsMax` rounds; returns the rounds taken. */
  tickUntil(done: () => boolean, roundsMax: number): number {
    for (let round = 1; round <= roundsMax; round++) {
      this.tickAll();
      if (done()) return round;
    }
    assert.fail(`condition not reached within ${roundsMax} rounds`);
  }

  /** Delivers queued messages (and those they cause) until the network is quiet. */
  deliverAll(): number {
    let delivered = 0;
    while (this.#queue.length > 0) {
      assert(++delivered <= deliveriesMax, "the network never went quiet");
      this.#deliver(this.#queue.shift() as Message);
    }
    return delivered;
  }

  /** Messages waiting in the network (a copy). */
  pending(): Message[] {
    return [...this.#queue];
  }

  /** Drops the next `times` messages that match (e.g. one snapshot chunk). */
  drop(matches: (message: Message) => boolean, times = Number.POSITIVE_INFINITY): () => void {
    const rule = { matches, remaining: times };
    this.#dropRules.push(rule);
    return () => {
      this.#dropRules = this.#dropRules.filter((other) => other !== rule);
    };
  }

  /** Cuts every link between groups; a node in no group is cut from everyone. */
  partition(...groups: readonly (readonly NodeId[])[]): void {
    this.#groups = new Map();
    groups.forEach((group, index) => {
      for (const id of group) this.#groups?.set(id, index);
    });
    this.note(`partition ${groups.map((group) => group.join(",")).join(" | ")}`);
  }

  isolate(id: NodeId): void {
    this.partition(
      [id],
      this.ids.filter((other) => other !== id),
    );
  }

  heal(): void {
    this.#groups = null;
    this.note("heal");
  }

  // ------------------------------------------------------------ faults

  /** Stops `id`: what it held in memory (core, state machine, messages to it) is lost; its disk is kept. */
  crash(id: NodeId): void {
    const member = this.#member(id);
    member.raft = null;
    member.kv = new KvStore();
    member.incomingBytes = [];
    member.confirmedReads = [];
    this.note(`${id} crashed`);
  }

  /** Restarts `id` from its disk: snapshot → state machine, then the core re-delivers committed entries. */
  restart(id: NodeId): void {
    const member = this.#member(id);
    assert(member.raft === null, `${id} is running`);
    const snapshot = member.disk.snapshot;
    if (snapshot) member.kv.restore(snapshot.meta, snapshot.bytes);
    member.raft = this.#newCore(member, {
      hardState: member.disk.hardState,
      snapshot: snapshot?.meta ?? null,
      entries: [...member.disk.entries],
    });
    member.lastSoft = { role: "follower", leader: null, term: member.raft.status().term };
    this.note(`${id} restarted term=${member.raft.status().term} commit=${member.raft.status().commit}`);
    this.#handleReadies(member);
  }

  // ------------------------------------------------------------ client calls

  /** Proposes `key=value` at `id` and handles the resulting Ready (messages are queued, not delivered). */
  propose(id: NodeId, key: string, value: string): RaftResult<{ index: number; term: number }> {
    const result = this.node(id).propose(encodeCommand(key, value));
    this.#handleReadies(this.#member(id));
    return result;
  }

  /** Starts a ReadIndex read of `key` at `id`; follow it with `readOutcome`. */
  read(id: NodeId, key: string): { requestId: number; result: RaftResult } {
    const member = this.#member(id);
    const requestId = this.#nextReadId++;
    const result = this.node(id).readIndex(requestId);
    if (result.ok) {
      member.reads.set(requestId, { status: "pending" });
      member.readKeys.set(requestId, key);
    }
    this.#handleReadies(member);
    return { requestId, result };
  }

  readOutcome(id: NodeId, requestId: number): ReadOutcome {
    const outcome = this.#member(id).reads.get(requestId);
    assert(outcome, `no read ${requestId} at ${id}`);
    return outcome;
  }

  /** Runs `call` on the core of `id` (campaign, transferLeadership, proposeMembership…), then handles its Ready. */
  on<T>(id: NodeId, call: (raft: RaftNode) => T): T {
    const result = call(this.node(id));
    this.#handleReadies(this.#member(id));
    return result;
  }

  /** Takes a state-machine snapshot at the applied index of `id` and lets the core compact its log. */
  snapshot(id: NodeId): SnapshotMeta {
    const member = this.#member(id);
    const { meta, bytes } = member.kv.snapshot();
    member.disk.snapshot = { meta, bytes };
    member.disk.entries = member.disk.entries.filter((entry) => entry.index > meta.index);
    this.node(id).compact(meta);
    this.note(`${id} snapshot index=${meta.index} bytes=${meta.sizeBytes}`);
    return meta;
  }

  // ------------------------------------------------------------ transcript

  /** Adds a line to the transcript (prefixed with the time). */
  note(text: string): void {
    this.#lines.push(`t=${this.time} ${text}`);
  }

  /** The transcript since the last call, one event per line. */
  takeTranscript(): string {
    const text = this.#lines.join("\n");
    this.#lines.length = 0;
    return text;
  }

  // ------------------------------------------------------------ internals

  #member(id: NodeId): Member {
    const member = this.#members.get(id);
    assert(member, `unknown node ${id}`);
    return member;
  }

  #addMember(id: NodeId, initial: ConstructorParameters<typeof RaftNode>[1]): void {
    assert(!this.#members.has(id), `${id} exists`);
    const member = newMember(id, initial);
    this.#members.set(id, member);
    member.raft = this.#newCore(member, initial);
  }

  #newCore(member: Member, initial: ConstructorParameters<typeof RaftNode>[1]): RaftNode {
    let seed = (this.#options.seed ?? 1) * 7919 + member.starts++ * 104_729;
    for (const char of member.id) seed = (seed * 31 + (char.codePointAt(0) ?? 0)) >>> 0;
    return new RaftNode(
      {
        electionTimeoutTicks: 10,
        heartbeatTicks: 1,
        ...this.#options.raft,
        id: member.id,
        prng: new Prng(seed),
        readSnapshot: (meta, offset, bytesMax) => {
          const stored = member.disk.snapshot;
          assert(stored && stored.meta.index === meta.index, `${member.id} has no snapshot at ${meta.index}`);
          return stored.bytes.subarray(offset, offset + bytesMax);
        },
      },
      initial,
    );
  }

  #linkOpen(from: NodeId, to: NodeId): boolean {
    if (this.#groups === null) return true;
    const a = this.#groups.get(from);
    return a !== undefined && a === this.#groups.get(to);
  }

  #deliver(message: Message): void {
    const target = this.#members.get(message.to);
    const rule = this.#dropRules.find((candidate) => candidate.remaining > 0 && candidate.matches(message));
    const dropped = !target?.raft || !this.#linkOpen(message.from, message.to) || rule !== undefined;
    if (rule) rule.remaining--;
    if (this.#traced(message)) this.note(`${describeMessage(message)}${dropped ? " DROPPED" : ""}`);
    if (dropped || !target?.raft) return;
    target.raft.step(message);
    this.#handleReadies(target);
  }

  #handleReadies(member: Member): void {
    let batches = 0;
    while (member.raft?.hasReady()) {
      assert(
        ++batches <= readyBatchesMax,
        `${member.id}: hasReady() stays true after ${readyBatchesMax} batches`,
      );
      const ready = member.raft.ready();
      persistReady(member, ready);
      this.#queue.push(...ready.messages);
      applyReady(member, ready, { appliedAt: this.#appliedAt, note: (text) => this.note(text) });
      member.raft.advance();
      if (ready.softState) this.#recordSoftState(member, ready.softState);
    }
  }

  #recordSoftState(member: Member, soft: SoftState): void {
    const last = member.lastSoft;
    member.lastSoft = soft;
    if (soft.role === last.role && soft.term === last.term && soft.leader === last.leader) return;
    if (soft.role === "leader") {
      const other = this.#leaderOfTerm.get(soft.term);
      assert(
        other === undefined || other === member.id,
        `two leaders in term ${soft.term}: ${other}, ${member.id}`,
      );
      this.#leaderOfTerm.set(soft.term, member.id);
    }
    const leader = soft.role === "follower" && soft.leader !== null ? ` leader=${soft.leader}` : "";
    this.note(`${member.id}: ${soft.role} term=${soft.term}${leader}`);
  }
}
