/** Public surface of the consensus core. */

export type {
  IncomingSnapshotChunk,
  PeerStatus,
  RaftInitialState,
  RaftOptions,
  RaftRefusal,
  RaftResult,
  RaftStatus,
  Ready,
  SoftState,
} from "./api-types.ts";
export type { MembershipChange } from "./membership.ts";
export { applyChange, isMember, isVoter, peersOf, quorumSize } from "./membership.ts";
export { RaftNode } from "./raft-node.ts";
export type { ReadState } from "./read-index.ts";
export type * from "./types.ts";
