/**
 * Membership arithmetic: quorum sizes, and the single-server change rule (thesis §4.1):
 * each configuration differs from the previous one by at most one voter, so any majority of
 * the old configuration overlaps any majority of the new one and no joint consensus is needed.
 */
import type { Membership, NodeId } from "./types.ts";

export type MembershipChange =
  | { readonly kind: "add-learner"; readonly node: NodeId }
  | { readonly kind: "add-voter"; readonly node: NodeId }
  | { readonly kind: "promote"; readonly node: NodeId }
  | { readonly kind: "demote"; readonly node: NodeId }
  | { readonly kind: "remove"; readonly node: NodeId };

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * True when `leader` and `follower` are both voters and together a quorum (at most three
 * voters): then an entry of the leader's term on both their disks is committed (§5.4.2),
 * whether or not the leader has heard so yet.
 */
export function leaderAndFollowerAreQuorum(
  membership: Membership,
  leader: NodeId,
  follower: NodeId,
): boolean {
  const { voters } = membership;
  return quorumSize(voters.length) <= 2 && voters.includes(leader) && voters.includes(follower);
}

export function isVoter(membership: Membership, node: NodeId): boolean {
  return membership.voters.includes(node);
}

export function isMember(membership: Membership, node: NodeId): boolean {
  return membership.voters.includes(node) || membership.learners.includes(node);
}

/** Every member but `self`, voters first, in configured order. */
export function peersOf(membership: Membership, self: NodeId): NodeId[] {
  return [...membership.voters, ...membership.learners].filter((node) => node !== self);
}

/**
 * The membership after `change`, or a reason it is not a valid single-server change.
 * Order is kept: a new member goes last, so every member shows the same order.
 */
export function applyChange(current: Membership, change: MembershipChange): Membership | string {
  const { node } = change;
  const voter = current.voters.includes(node);
  const learner = current.learners.includes(node);
  const without = (list: readonly NodeId[]) => list.filter((n) => n !== node);
  switch (change.kind) {
    case "add-learner":
      if (voter || learner) return `${node} is already a member`;
      return { voters: current.voters, learners: [...current.learners, node] };
    case "add-voter":
      if (voter) return `${node} is already a voter`;
      return { voters: [...current.voters, node], learners: without(current.learners) };
    case "promote":
      if (!learner) return `${node} is not a standby (learner)`;
      return { voters: [...current.voters, node], learners: without(current.learners) };
    case "demote":
      if (!voter) return `${node} is not a voter`;
      if (current.voters.length === 1) return "cannot demote the last voter";
      return { voters: without(current.voters), learners: [...current.learners, node] };
    case "remove":
      if (!voter && !learner) return `${node} is not a member`;
      if (voter && current.voters.length === 1) return "cannot remove the last voter";
      return { voters: without(current.voters), learners: without(current.learners) };
  }
}

/** quorumMatchIndex's sort buffer, kept between calls (it grows to the largest voter count). */
const matchScratch: number[] = [];

/**
 * The highest index replicated on a quorum of `voters`, given each one's match index. It runs on
 * every proposal and every answer, so it sorts into a reused buffer (insertion sort: a handful of
 * voters) instead of allocating: mapping, copying and `Array.prototype.sort` cost ~1.2 KB per
 * put on a primary (V8's sampling heap profiler). The buffer is shared by every node in the
 * process, which is safe because a call runs to its end: `matchOf` only reads, never re-enters.
 */
export function quorumMatchIndex(voters: readonly NodeId[], matchOf: (voter: NodeId) => number): number {
  const count = voters.length;
  if (count === 0) return 0;
  for (let i = 0; i < count; i++) {
    const value = matchOf(voters[i] as NodeId);
    let at = i;
    while (at > 0 && (matchScratch[at - 1] as number) < value) {
      matchScratch[at] = matchScratch[at - 1] as number;
      at -= 1;
    }
    matchScratch[at] = value;
  }
  return matchScratch[quorumSize(count) - 1] as number;
}
