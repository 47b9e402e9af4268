/**
 * The data the consensus core consumes and produces. Everything here is plain data (no
 * classes), so that it can be persisted, sent on the wire with msgpackr and compared in tests.
 *
 * Indexes and terms are non-negative integers below 2^53. Index 0 / term 0 mean "nothing".
 */

/** A permanent node id (generated at a node's first start; independent of its address). */
export type NodeId = string;

/** The voting configuration of the cluster. Voters count for quorum; learners (standbys) only replicate. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** A log entry. `command` data is opaque to the core; `config` carries the whole new membership. */
export type Entry =
  | { readonly kind: "command"; readonly index: number; readonly term: number; readonly data: Uint8Array }
  | {
      readonly kind: "config";
      readonly index: number;
      readonly term: number;
      readonly membership: Membership;
    }
  | { readonly kind: "noop"; readonly index: number; readonly term: number };

/** What must be on stable storage before a node answers any message. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** Describes a state-machine snapshot; the snapshot's bytes live in a snapshot store. */
export interface SnapshotMeta {
  /** Last log index the snapshot includes. */
  readonly index: number;
  readonly term: number;
  /** The membership as of `index`. */
  readonly membership: Membership;
  /** Total size of the snapshot's bytes. */
  readonly sizeBytes: number;
  /**
   * A snapshot mark: the state as of `index` is held by the persistent state machine itself
   * (made durable there before the mark was written), so the store keeps only this description
   * (`sizeBytes` 0) and the log may be compacted up to it. A mark is never sent to a follower:
   * a leader copies its state machine when a follower needs a snapshot (RaftOptions.snapshotForTransfer).
   */
  readonly inStateMachine?: true;
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

export interface VoteRequest extends MessageBase {
  readonly type: "vote";
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** A pre-vote asks "would you vote for me?" without anyone changing term (Raft thesis §9.6). */
  readonly preVote: boolean;
  /** Sent after a leadership transfer's timeout-now: voters skip their leader-stickiness check. */
  readonly transfer: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: "vote-response";
  readonly preVote: boolean;
  readonly granted: boolean;
}

export interface AppendRequest extends MessageBase {
  readonly type: "append";
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  /**
   * True when the append only tells a follower in replicate state a newer commit index: it
   * holds no entries and the leader waits for no answer, so a follower whose log matches does
   * not reply (a rejection is still sent). Absent (from an older leader) means reply.
   */
  readonly commitOnly: boolean;
}

export interface AppendResponse extends MessageBase {
  readonly type: "append-response";
  readonly success: boolean;
  /** On success: the highest index known to match the leader's log. */
  readonly matchIndex: number;
  /** On rejection: the `prevIndex` that was rejected (lets the leader ignore stale rejections). */
  readonly rejectedIndex: number;
  /** On rejection (fast back-off): where the leader should try next. */
  readonly conflictIndex: number;
  readonly conflictTerm: number;
  /** The follower's last log index, so the leader can jump straight to it. */
  readonly lastIndex: number;
}

export interface Heartbeat extends MessageBase {
  readonly type: "heartbeat";
  /** min(follower's match, leader's commit): never tells a follower to commit what it may not have. */
  readonly commit: number;
  /** Heartbeat round, echoed back; confirms ReadIndex requests and leases up to this round. */
  readonly round: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: "heartbeat-response";
  readonly round: number;
  /** The follower's last log index, so the leader notices a follower that fell behind. */
  readonly lastIndex: number;
}

export interface SnapshotChunk extends MessageBase {
  readonly type: "snapshot";
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
}

export interface SnapshotResponse extends MessageBase {
  readonly type: "snapshot-response";
  readonly snapshotIndex: number;
  /** The next byte offset the follower expects; equals sizeBytes once installed. */
  readonly nextOffset: number;
  /** The follower refused the transfer (it must restart from offset 0). */
  readonly rejected: boolean;
}

export interface TimeoutNow extends MessageBase {
  readonly type: "timeout-now";
}

/**
 * Leader → follower, sent once the leader's own log is durable through `index` (after the log
 * write of a Ready that appended entries). In a cluster of at most three voters the leader and
 * one follower are a quorum, so a follower whose own log holds `index` with the current term
 * knows the entry is committed without waiting for the leader's commit index, which saves the
 * round trip through the leader (follower → acknowledgement → leader → commit → follower).
 * See replication.ts, `handleDurableNotice`. No answer.
 */
export interface DurableNotice extends MessageBase {
  readonly type: "durable";
  readonly index: number;
  /**
   * The runtime's, not the core's (the core never reads it): the writes the receiving member
   * forwarded that this notice covers, as [forward id, log index] pairs, so that member answers
   * them from its own state machine (src/runtime/forward-origins.ts).
   */
  readonly forwarded?: readonly (readonly [number, number])[];
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | SnapshotChunk
  | SnapshotResponse
  | TimeoutNow
  | DurableNotice;

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";
