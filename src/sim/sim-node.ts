/**
 * One simulated member: a real RaftNode driven by the Ready contract over a simulated disk.
 *
 * Persisting a Ready takes simulated time; a crash in between loses that Ready entirely (its
 * entries, hard state and messages), which is exactly what an unsynced write loses on a real
 * disk. Only what a finished "fsync" wrote survives into the restarted node.
 */
import { assert } from "../lib/assert.ts";
import type { Prng } from "../lib/prng.ts";
import type { RaftMutation, Ready } from "../raft/api-types.ts";
import { RaftNode } from "../raft/raft-node.ts";
import type { Entry, HardState, Message, NodeId, SnapshotMeta } from "../raft/types.ts";
import { committedOnDiskCount, splitMessages } from "../runtime/ready-order.ts";
import type { EventQueue } from "./event-queue.ts";
import type { InvariantChecker } from "./invariants.ts";
import { decodeCommand, KvMachine } from "./kv-machine.ts";
import type { KvOutput } from "./linearizability/kv-model.ts";

export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** What survives a crash. */
export interface SimDisk {
  hardState: HardState | null;
  /** Newest last; at most two kept, like a real snapshot store. */
  snapshots: StoredSnapshot[];
  entries: Entry[];
  incoming: { meta: SnapshotMeta; chunks: Uint8Array[] } | null;
}

export interface SimNodeHooks {
  send(message: Message): void;
  /** A write this node proposed was applied (index/term matched) or definitely lost. */
  writeResolved(node: SimNode, index: number, term: number, result: KvOutput | "lost"): void;
  readServed(node: SimNode, readId: number, machine: KvMachine): void;
  readFailed(node: SimNode, readId: number): void;
}

export interface SimNodeSettings {
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly diskLatencyMax: number;
  readonly snapshotEveryEntries: number;
  readonly snapshotChunkBytes: number;
  readonly leaseDriftTicks: number | null;
  readonly mutations: readonly RaftMutation[];
  readonly inflightMax: number;
  readonly inflightBytesMax: number;
  readonly appendEntriesMax: number;
  readonly checkQuorum: boolean;
  /** How a Ready is handled (see SeedOptions.writes). */
  readonly writes: "in-turn" | "as-runtime";
  /** Rules of the Ready contract broken on purpose (see SimMutation). */
  readonly simMutations: readonly SimMutation[];
}

/**
 * Rules of the Ready contract broken on purpose by the simulated member, for a test to show that
 * the checks catch them. "acks-before-write": votes and acknowledgements leave before the write
 * that they promise is durable (as-runtime writes only).
 */
export type SimMutation = "acks-before-write";

/** A Ready whose write is under way (as-runtime writes), and what waits for that write. */
interface WriteInFlight {
  readonly ready: Ready;
  /** Messages that promise something about this member's disk: sent once the write is done. */
  readonly afterWrite: Message[];
  /** Committed entries beyond this member's written log: applied once the write is done, in order. */
  readonly committedLate: Entry[];
}

export class SimNode {
  readonly id: NodeId;
  readonly disk: SimDisk;
  raft: RaftNode | null = null;
  machine = new KvMachine();
  /** Bumped on every crash, so callbacks scheduled by an earlier life are ignored. */
  incarnation = 0;
  paused = false;
  busy = false;
  inbox: Message[] = [];
  ticksDue = 0;
  /** Work to run against the core when it is free (client requests). */
  requests: ((raft: RaftNode) => void)[] = [];
  /** Writes proposed here: index → term. */
  pendingWrites = new Map<number, number>();
  /** Reads confirmed by the core but waiting for the state machine to reach their index. */
  readsWaiting: { id: number; index: number }[] = [];
  readonly #queue: EventQueue;
  readonly #prng: Prng;
  readonly #hooks: SimNodeHooks;
  readonly #checker: InvariantChecker;
  readonly #settings: SimNodeSettings;

  constructor(
    id: NodeId,
    disk: SimDisk,
    context: {
      queue: EventQueue;
      prng: Prng;
      hooks: SimNodeHooks;
      checker: InvariantChecker;
      settings: SimNodeSettings;
    },
  ) {
    this.id = id;
    this.disk = disk;
    this.#queue = context.queue;
    this.#prng = context.prng;
    this.#hooks = context.hooks;
    this.#checker = context.checker;
    this.#settings = context.settings;
  }

  get up(): boolean {
    return this.raft !== null;
  }

  /** Starts (or restarts) the node from its disk. */
  start(seed: number): void {
    assert(this.raft === null, "start of a running node");
    const snapshot = this.disk.snapshots.at(-1) ?? null;
    this.machine = new KvMachine();
    if (snapshot) this.machine.restore(snapshot.data);
    const s = this.#settings;
    this.raft = new RaftNode(
      {
        id: this.id,
        prng: this.#prng.fork(),
        electionTimeoutTicks: s.electionTimeoutTicks,
        heartbeatTicks: s.heartbeatTicks,
        snapshotChunkBytes: s.snapshotChunkBytes,
        leaseDriftTicks: s.leaseDriftTicks,
        mutations: s.mutations,
        inflightMax: s.inflightMax,
        inflightBytesMax: s.inflightBytesMax,
        checkQuorum: s.checkQuorum,
        appendEntriesMax: s.appendEntriesMax,
        readSnapshot: (meta, offset, bytesMax) => this.#readSnapshot(meta, offset, bytesMax),
      },
      { hardState: this.disk.hardState, snapshot: snapshot?.meta ?? null, entries: this.disk.entries },
    );
    this.#checker.nodeStarted(this.id, this.raft, seed);
    this.busy = false;
    this.inbox = [];
    this.ticksDue = 0;
  }

  crash(): void {
    this.raft = null;
    this.incarnation++;
    this.busy = false;
    this.inbox = [];
    this.requests = [];
    this.pendingWrites.clear();
    this.readsWaiting = [];
    this.ticksDue = 0;
  }

  /** Feeds queued input to the core and, if it has work, starts persisting the next Ready. */
  drive(): void {
    const raft = this.raft;
    if (raft === null || this.paused || this.busy) return;
    const inbox = this.inbox;
    this.inbox = [];
    for (const message of inbox) raft.step(message);
    for (; this.ticksDue > 0; this.ticksDue--) raft.tick();
    const requests = this.requests;
    this.requests = [];
    for (const request of requests) request(raft);
    this.#checker.observe(this.id, raft);
    if (!raft.hasReady()) return;
    const ready = raft.ready();
    this.busy = true;
    const incarnation = this.incarnation;
    const writing = this.#settings.writes === "as-runtime" ? this.#startWrite(ready) : null;
    this.#queue.after(this.#prng.between(0, this.#settings.diskLatencyMax), () => {
      if (this.incarnation !== incarnation) return; // crashed before the fsync finished: all lost
      if (writing !== null) this.#finishWrite(raft, writing);
      else this.#handleReady(raft, ready);
    });
  }

  /**
   * Writes as src/runtime handles a Ready: a leader's replication leaves before the write (its
   * followers write while it writes, thesis §10.2.1), committed entries this member's log already
   * holds on disk are applied at once, and the rest — votes and acknowledgements, entries not yet
   * on this disk, the installed snapshot — waits for the write.
   */
  #startWrite(ready: Ready): WriteInFlight {
    const { early, afterSync, commitUpdates } = splitMessages(ready.messages);
    const acksEarly = this.#settings.simMutations.includes("acks-before-write");
    for (const message of acksEarly ? [...early, ...afterSync] : early) this.#hooks.send(message);
    const onDisk = committedOnDiskCount(ready, this.#lastIndexOnDisk());
    for (const entry of ready.committed.slice(0, onDisk)) this.#apply(entry);
    return {
      ready,
      afterWrite: [...(acksEarly ? [] : afterSync), ...commitUpdates],
      committedLate: ready.committed.slice(onDisk),
    };
  }

  #finishWrite(raft: RaftNode, writing: WriteInFlight): void {
    const { ready } = writing;
    this.#persist(ready);
    for (const message of writing.afterWrite) this.#hooks.send(message);
    if (ready.snapshot) this.#restoreInstalled(ready.snapshot);
    for (const entry of writing.committedLate) this.#apply(entry);
    this.#finishReady(raft, ready);
  }

  #lastIndexOnDisk(): number {
    return this.disk.entries.at(-1)?.index ?? this.disk.snapshots.at(-1)?.meta.index ?? 0;
  }

  #restoreInstalled(snapshot: SnapshotMeta): void {
    const stored = this.disk.snapshots.at(-1);
    assert(stored?.meta.index === snapshot.index, "installed snapshot is not on disk");
    this.machine.restore(stored.data);
    this.#checker.snapshotInstalled(this.id, snapshot);
  }

  #handleReady(raft: RaftNode, ready: Ready): void {
    this.#persist(ready);
    for (const message of ready.messages) this.#hooks.send(message);
    if (ready.snapshot) this.#restoreInstalled(ready.snapshot);
    for (const entry of ready.committed) this.#apply(entry);
    this.#finishReady(raft, ready);
  }

  /** Reads, advance, then the next Ready. */
  #finishReady(raft: RaftNode, ready: Ready): void {
    for (const read of ready.reads) this.readsWaiting.push(read);
    for (const id of ready.readsFailed) this.#hooks.readFailed(this, id);
    raft.advance();
    this.busy = false;
    this.#serveReads(raft);
    this.#maybeSnapshot(raft);
    this.drive();
  }

  #persist(ready: Ready): void {
    const disk = this.disk;
    // Chunks are written in order; a "done" chunk completes that snapshot's file. Several transfers
    // may pass through one Ready (a newer snapshot can start right after one completed).
    for (const chunk of ready.snapshotChunks) {
      if (chunk.offset === 0) disk.incoming = { meta: chunk.meta, chunks: [] };
      assert(disk.incoming?.meta.index === chunk.meta.index, "snapshot chunk without a start");
      disk.incoming.chunks.push(chunk.data);
      if (chunk.done) {
        const data = concat(disk.incoming.chunks);
        assert(data.byteLength === chunk.meta.sizeBytes, "snapshot size mismatch");
        this.#storeSnapshot({ meta: chunk.meta, data });
        disk.incoming = null;
      }
    }
    if (ready.snapshot) {
      const meta = ready.snapshot;
      assert(
        disk.snapshots.at(-1)?.meta.index === meta.index,
        () => `${this.id}: snapshot ${meta.index} to install is not the newest on disk`,
      );
      const keep = disk.entries.some((e) => e.index === meta.index && e.term === meta.term);
      disk.entries = keep ? disk.entries.filter((e) => e.index > meta.index) : [];
    }
    if (ready.entries.length > 0) {
      const first = (ready.entries[0] as Entry).index;
      disk.entries = disk.entries.filter((e) => e.index < first);
      const before = disk.entries.at(-1);
      const snapshot = disk.snapshots.at(-1)?.meta;
      const prevTerm =
        before?.index === first - 1
          ? before.term
          : snapshot?.index === first - 1
            ? snapshot.term
            : first === 1
              ? 0
              : -1;
      disk.entries.push(...ready.entries);
      this.#checker.entriesPersisted(this.id, ready.entries, prevTerm);
    }
    if (ready.hardState) {
      this.#checker.hardStatePersisted(this.id, disk.hardState, ready.hardState);
      disk.hardState = ready.hardState;
    }
  }

  #apply(entry: Entry): void {
    this.#checker.applied(this.id, entry);
    const proposedTerm = this.pendingWrites.get(entry.index);
    if (entry.kind !== "command") {
      if (proposedTerm !== undefined) this.#resolve(entry, proposedTerm, null);
      return;
    }
    const result = this.machine.apply(decodeCommand(entry.data).command);
    if (proposedTerm !== undefined) this.#resolve(entry, proposedTerm, result);
  }

  #resolve(entry: Entry, proposedTerm: number, result: KvOutput | null): void {
    this.pendingWrites.delete(entry.index);
    // Another entry at our index means ours was overwritten: it can never commit.
    const outcome = entry.term === proposedTerm && result !== null ? result : "lost";
    this.#hooks.writeResolved(this, entry.index, proposedTerm, outcome);
  }

  #serveReads(raft: RaftNode): void {
    const applied = raft.status().applied;
    const still: { id: number; index: number }[] = [];
    for (const read of this.readsWaiting) {
      if (read.index <= applied) this.#hooks.readServed(this, read.id, this.machine);
      else still.push(read);
    }
    this.readsWaiting = still;
  }

  #maybeSnapshot(raft: RaftNode): void {
    const status = raft.status();
    const last = this.disk.snapshots.at(-1)?.meta.index ?? 0;
    if (status.applied - last < this.#settings.snapshotEveryEntries) return;
    const data = this.machine.snapshot();
    const meta: SnapshotMeta = {
      index: status.applied,
      term: raft.log.term(status.applied) as number,
      membership: raft.log.membershipAt(status.applied).membership,
      sizeBytes: data.byteLength,
    };
    this.#storeSnapshot({ meta, data });
    // Keep a few entries behind the snapshot so slightly slow followers need no snapshot.
    const compactIndex = Math.max(raft.log.baseIndex, meta.index - 5);
    raft.compact(meta, compactIndex);
    this.disk.entries = this.disk.entries.filter((e) => e.index > compactIndex);
  }

  #storeSnapshot(snapshot: StoredSnapshot): void {
    this.disk.snapshots.push(snapshot);
    if (this.disk.snapshots.length > 2) this.disk.snapshots.shift();
  }

  #readSnapshot(meta: SnapshotMeta, offset: number, bytesMax: number): Uint8Array {
    const stored = this.disk.snapshots.find((s) => s.meta.index === meta.index && s.meta.term === meta.term);
    assert(stored !== undefined, () => `snapshot ${meta.term}/${meta.index} is no longer on disk`);
    return stored.data.subarray(offset, offset + bytesMax);
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const result = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    result.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return result;
}
