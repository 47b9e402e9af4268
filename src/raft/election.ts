/**
 * Elections: pre-vote (thesis §9.6), the vote itself (§5.2, §5.4.1), and tallying.
 */
import { isVoter, quorumSize } from "./membership.ts";
import type { RaftNode } from "./raft-node.ts";
import type { VoteRequest, VoteResponse } from "./types.ts";

/**
 * Starts a pre-vote (which changes no term) or a real election. `transfer` marks an election asked
 * for by the leader (timeout-now), which voters grant even while they still hear from that leader.
 */
export function startElection(node: RaftNode, preVote: boolean, transfer: boolean): void {
  if (!node.promotable()) return;
  let electionTerm: number;
  if (preVote) {
    node.role = "pre-candidate";
    electionTerm = node.term + 1;
  } else {
    node.term += 1;
    node.vote = node.id;
    node.role = "candidate";
    electionTerm = node.term;
  }
  node.leader = null;
  node.votes.clear();
  node.votes.set(node.id, true);
  node.electionElapsed = 0;
  node.resetElectionTimer();
  if (tally(node) === "won") return;
  for (const voter of node.membership.voters) {
    if (voter === node.id) continue;
    node.send({
      type: "vote",
      from: node.id,
      to: voter,
      term: electionTerm,
      lastLogIndex: node.log.lastIndex(),
      lastLogTerm: node.log.lastTerm(),
      preVote,
      transfer,
    });
  }
}

export function handleVote(node: RaftNode, message: VoteRequest): void {
  const canVote =
    node.vote === message.from ||
    (node.vote === null && node.leader === null) ||
    (message.preVote && message.term > node.term);
  const logOk =
    node.log.isUpToDate(message.lastLogIndex, message.lastLogTerm) ||
    node.settings.mutations.has("vote-ignores-log");
  const granted = canVote && logOk;
  node.send({
    type: "vote-response",
    from: node.id,
    to: message.from,
    // A granted pre-vote answers in the requested term; everything else in ours.
    term: granted ? message.term : node.term,
    preVote: message.preVote,
    granted,
  });
  if (granted && !message.preVote) {
    node.vote = message.from;
    node.electionElapsed = 0;
  }
}

export function handleVoteResponse(node: RaftNode, message: VoteResponse): void {
  const expecting =
    (node.role === "pre-candidate" && message.preVote) || (node.role === "candidate" && !message.preVote);
  if (!expecting || !isVoter(node.membership, message.from)) return;
  node.votes.set(message.from, message.granted);
  tally(node);
}

/** Counts votes and acts on a decided election. */
function tally(node: RaftNode): "won" | "lost" | "pending" {
  const voters = node.membership.voters;
  const needed = quorumSize(voters.length);
  let granted = 0;
  let rejected = 0;
  for (const voter of voters) {
    const vote = node.votes.get(voter);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  if (granted >= needed) {
    if (node.role === "pre-candidate") startElection(node, false, false);
    else node.becomeLeader();
    return "won";
  }
  if (rejected > voters.length - needed) {
    node.becomeFollower(node.term, null);
    return "lost";
  }
  return "pending";
}
