/**
 * One node of the scenario harness as the runtime would hold it: the core, a simulated disk that
 * survives crashes, the state machine, reads in progress; and the persist and apply steps of the
 * Ready contract (src/raft/DESIGN.md) that the harness runs for it.
 */
import assert from "node:assert/strict";
import type {
  Entry,
  HardState,
  NodeId,
  RaftNode,
  Ready,
  SnapshotMeta,
  SoftState,
} from "../../src/raft/index.ts";
import { describeEntry, KvStore } from "./kv-store.ts";

export type ReadOutcome =
  | { readonly status: "pending" }
  | { readonly status: "failed" }
  | { readonly status: "served"; readonly index: number; readonly value: string | undefined };

export interface Disk {
  hardState: HardState | null;
  entries: Entry[];
  snapshot: { meta: SnapshotMeta; bytes: Uint8Array } | null;
}

export interface Member {
  readonly id: NodeId;
  raft: RaftNode | null;
  readonly disk: Disk;
  kv: KvStore;
  incomingBytes: Uint8Array[];
  /** Reads confirmed by the core, waiting for the state machine to reach their index. */
  confirmedReads: { id: number; index: number }[];
  readonly reads: Map<number, ReadOutcome>;
  readonly readKeys: Map<number, string>;
  lastSoft: SoftState;
  starts: number;
}

/** What applying needs from the whole cluster: the entry each index holds, and the transcript. */
export interface ApplyContext {
  readonly appliedAt: Map<number, string>;
  note(text: string): void;
}

/** A member with the given initial state on its disk (the caller creates its core). */
export function newMember(id: NodeId, initial: ConstructorParameters<typeof RaftNode>[1]): Member {
  return {
    id,
    raft: null,
    disk: { hardState: initial.hardState, entries: [...initial.entries], snapshot: null },
    kv: new KvStore(),
    incomingBytes: [],
    confirmedReads: [],
    reads: new Map(),
    readKeys: new Map(),
    lastSoft: { role: "follower", leader: null, term: initial.hardState?.term ?? 0 },
    starts: 0,
  };
}

/** Step 1 of the Ready contract: what a real node writes (and fsyncs) before sending anything. */
export function persistReady(member: Member, ready: Ready): void {
  for (const chunk of ready.snapshotChunks) {
    if (chunk.offset === 0) member.incomingBytes = [];
    const received = member.incomingBytes.reduce((sum, bytes) => sum + bytes.byteLength, 0);
    assert.equal(chunk.offset, received, "snapshot chunks are written in order");
    member.incomingBytes.push(chunk.data);
  }
  const disk = member.disk;
  if (ready.snapshot) {
    const meta = ready.snapshot;
    disk.snapshot = { meta, bytes: Buffer.concat(member.incomingBytes) };
    member.incomingBytes = [];
    const keep = disk.entries.some((entry) => entry.index === meta.index && entry.term === meta.term);
    disk.entries = keep ? disk.entries.filter((entry) => entry.index > meta.index) : [];
  }
  const first = ready.entries[0];
  if (first) {
    disk.entries = disk.entries.filter((entry) => entry.index < first.index);
    const last = disk.entries.at(-1)?.index ?? disk.snapshot?.meta.index ?? 0;
    assert.equal(first.index, last + 1, `${member.id}: persisted log stays contiguous`);
    disk.entries.push(...ready.entries);
  }
  if (ready.hardState) disk.hardState = ready.hardState;
}

/** Steps 3 and 4: install a snapshot, apply committed entries, serve and fail reads. */
export function applyReady(member: Member, ready: Ready, cluster: ApplyContext): void {
  if (ready.snapshot) {
    const stored = member.disk.snapshot;
    assert(stored, "an installed snapshot is on disk");
    member.kv.restore(ready.snapshot, stored.bytes);
    cluster.note(`${member.id} installed snapshot index=${ready.snapshot.index}`);
  }
  for (const entry of ready.committed) {
    const description = describeEntry(entry);
    const earlier = cluster.appliedAt.get(entry.index);
    assert(
      earlier === undefined || earlier === description,
      `state-machine safety: ${member.id} applies ${description} at ${entry.index}, another node applied ${earlier}`,
    );
    cluster.appliedAt.set(entry.index, description);
    member.kv.apply(entry);
  }
  member.confirmedReads.push(...ready.reads);
  member.confirmedReads = member.confirmedReads.filter((read) => {
    if (read.index > member.kv.appliedIndex) return true;
    const value = member.kv.data.get(member.readKeys.get(read.id) ?? "");
    member.reads.set(read.id, { status: "served", index: read.index, value });
    cluster.note(`${member.id} read#${read.id} served index=${read.index}`);
    return false;
  });
  for (const id of ready.readsFailed) {
    member.reads.set(id, { status: "failed" });
    cluster.note(`${member.id} read#${id} failed`);
  }
}
