/**
 * The types of the core's API: options, initial state, the Ready batch, results and status.
 */
import type { Prng } from "../lib/prng.ts";
import type { ReadState } from "./read-index.ts";
import type { Entry, HardState, Membership, Message, NodeId, Role, SnapshotMeta } from "./types.ts";

/**
 * Rules broken on purpose, for the simulator to prove that its checks catch them. Never set
 * outside tests: each one makes the cluster unsafe.
 */
export type RaftMutation =
  /** Commit an entry of an earlier term by counting replicas (Figure 8 of the Raft paper). */
  | "commit-old-term-entries"
  /** Grant votes without the up-to-date log check (§5.4.1). */
  | "vote-ignores-log"
  /** Serve ReadIndex reads without confirming leadership with a quorum. */
  | "read-without-quorum"
  /**
   * Give reads the leader's commit index even when a durable notice announced more: a follower
   * may then have answered a write that such a read does not see (replication.ts, handleDurableNotice).
   */
  | "read-ignores-durable-notices";

export interface RaftOptions {
  readonly id: NodeId;
  readonly prng: Prng;
  /**
   * A follower campaigns after a random timeout in [electionTimeoutTicks, electionTimeoutTicks +
   * electionJitterTicks). This minimum is also what leader stickiness and leases rely on.
   */
  readonly electionTimeoutTicks: number;
  /** Width of the random part of the election timeout (default: electionTimeoutTicks, as in etcd). */
  readonly electionJitterTicks?: number;
  readonly heartbeatTicks: number;
  /** Pre-vote (thesis §9.6): a node that cannot win does not bump terms and disrupt a leader. */
  readonly preVote?: boolean;
  /** Check-quorum: a leader that has not heard from a quorum for an election timeout steps down. */
  readonly checkQuorum?: boolean;
  /** Unacknowledged appends in flight per follower. */
  readonly inflightMax?: number;
  /**
   * Bytes of entries in unacknowledged appends per follower (one append may always be out):
   * bounds what a slow follower holds of the leader's memory with large entries (default 8 MiB).
   */
  readonly inflightBytesMax?: number;
  readonly appendEntriesMax?: number;
  readonly appendBytesMax?: number;
  readonly snapshotChunkBytes?: number;
  /** Proposals are refused ("busy") while this many entries are uncommitted: backpressure. */
  readonly uncommittedEntriesMax?: number;
  /** At most this many committed entries per Ready, so one batch stays bounded. */
  readonly committedPerReadyMax?: number;
  /**
   * Lease-based reads (no heartbeat round per read) when set: a leader serves reads for
   * `electionTimeoutTicks - leaseDriftTicks` ticks after a quorum acknowledged a heartbeat. Safe only
   * if no member's clock runs faster than another's by more than `leaseDriftTicks` per election timeout.
   */
  readonly leaseDriftTicks?: number | null;
  /** Test only: rules to break on purpose (see {@link RaftMutation}). */
  readonly mutations?: readonly RaftMutation[];
  /** Reads `bytesMax` bytes of a snapshot from `offset` (the core streams snapshots in chunks). */
  readonly readSnapshot?: (meta: SnapshotMeta, offset: number, bytesMax: number) => Uint8Array;
  /**
   * When set, the snapshot a leader sends to a follower that needs one: a copy at index
   * `indexMin` or later (the follower then goes on from the leader's log), or null while none is
   * ready — the host starts making one, and the leader asks again when the follower next answers
   * (etcd's ErrSnapshotTemporarilyUnavailable). Without it the leader sends its latest snapshot.
   * For hosts whose snapshots are marks (SnapshotMeta.inStateMachine), which hold no data.
   */
  readonly snapshotForTransfer?: (indexMin: number) => SnapshotMeta | null;
}

export interface RaftInitialState {
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  /** Index the state machine has applied (defaults to the snapshot's index). */
  readonly applied?: number;
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
}

/** A chunk of a snapshot arriving from the leader, to be written to the snapshot store. */
export interface IncomingSnapshotChunk {
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
}

/** What the runtime must do, in this order: persist, send, apply. Then call `advance()`. */
export interface Ready {
  readonly softState: SoftState | null;
  /** Persist with `entries`, before sending anything. */
  readonly hardState: HardState | null;
  /** Persist; the first entry may replace existing ones from its index on. */
  readonly entries: readonly Entry[];
  /** Chunks of an incoming snapshot to write, in order. */
  readonly snapshotChunks: readonly IncomingSnapshotChunk[];
  /** A complete snapshot to install: reset the stored log to it and restore the state machine, before applying `committed`. */
  readonly snapshot: SnapshotMeta | null;
  /** Send after persisting. */
  readonly messages: readonly Message[];
  /**
   * Apply in order after persisting (and after installing `snapshot`). Entries an earlier Ready
   * persisted, which this one does not rewrite, may be applied while it persists (src/runtime).
   */
  readonly committed: readonly Entry[];
  /** Reads that may be served once the state machine has applied `index`. */
  readonly reads: readonly ReadState[];
  /** Reads that can no longer be confirmed here (leadership lost): retry elsewhere. */
  readonly readsFailed: readonly number[];
}

export type RaftRefusal =
  | "not-leader"
  | "transferring"
  | "busy"
  | "leader-not-ready"
  | "membership-change-pending"
  | "invalid";

export type RaftResult<T = object> =
  | ({ readonly ok: true } & T)
  | {
      readonly ok: false;
      readonly reason: RaftRefusal;
      readonly leader: NodeId | null;
      readonly message?: string;
    };

export interface PeerStatus {
  readonly id: NodeId;
  readonly match: number;
  readonly next: number;
  readonly state: string;
  readonly recentActive: boolean;
}

export interface RaftStatus extends SoftState {
  readonly id: NodeId;
  readonly vote: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Bytes of the entries the log holds in memory (command data; see entryBytes): what compaction frees. */
  readonly logBytes: number;
  readonly membership: Membership;
  readonly transferee: NodeId | null;
  readonly peers: readonly PeerStatus[];
  /**
   * Leader: the last index its durable notices announced in this term (0: none, or not leader).
   * A secondary may have answered writes up to it before this leader applied them, so a read
   * served from this leader's state without a read index waits until it applied this far.
   */
  readonly durableNoticeIndex: number;
}
