/**
 * Fixtures for rule-by-rule tests of one RaftNode driven by hand-made messages (the style of
 * etcd's raft_paper_test.go): a node with a chosen log and term, its Ready drained at once.
 */
import { Prng } from "../../src/lib/prng.ts";
import {
  type AppendRequest,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  RaftNode,
  type RaftOptions,
  type VoteRequest,
} from "../../src/raft/index.ts";

export const voters = ["a", "b", "c"];

/**
 * A log of the given terms: index 1 is the bootstrap configuration (term `terms[0]`), the
 * following indexes are no-ops. `logOf([1, 1, 2])` = config@1/t1, noop@2/t1, noop@3/t2.
 */
export function logOf(terms: readonly number[], members: readonly NodeId[] = voters): Entry[] {
  return terms.map((term, i) =>
    i === 0
      ? { kind: "config", index: 1, term, membership: { voters: members, learners: [] } }
      : { kind: "noop", index: i + 1, term },
  );
}

export interface LoneNodeOptions extends Partial<Omit<RaftOptions, "id" | "prng">> {
  readonly term?: number;
  readonly vote?: NodeId | null;
  readonly commit?: number;
  readonly log?: readonly Entry[];
  readonly seed?: number;
}

/** A node of the cluster a, b, c; pre-vote off unless asked, so that elections are the paper's. */
export function loneNode(id: NodeId, options: LoneNodeOptions = {}): RaftNode {
  const { term = 1, vote = null, commit = 1, log = logOf([1]), seed = 1, ...raft } = options;
  return new RaftNode(
    { electionTimeoutTicks: 10, heartbeatTicks: 1, preVote: false, ...raft, id, prng: new Prng(seed) },
    { hardState: { term, vote, commit }, snapshot: null, entries: log, applied: commit },
  );
}

export interface Drained {
  readonly messages: Message[];
  /** Entries handed over for persisting (each batch's first entry may overwrite from its index on). */
  readonly entries: Entry[];
  readonly committed: Entry[];
  readonly hardState: HardState | null;
}

/** Handles every pending Ready of `node` (as if persisted, sent and applied) and returns what it held. */
export function drain(node: RaftNode): Drained {
  const drained: Drained = { messages: [], entries: [], committed: [], hardState: null };
  let hardState: HardState | null = null;
  for (let batch = 0; node.hasReady(); batch++) {
    if (batch > 64) throw new Error(`${node.id}: hasReady() never settles`);
    const ready = node.ready();
    drained.messages.push(...ready.messages);
    drained.entries.push(...ready.entries);
    drained.committed.push(...ready.committed);
    hardState = ready.hardState ?? hardState;
    node.advance();
  }
  return { ...drained, hardState };
}

/** Makes `node` leader (pre-vote off) with the votes of `granters`; returns nothing, drains its Ready. */
export function makeLeader(node: RaftNode, granters: readonly NodeId[] = ["b"]): void {
  node.campaign();
  drain(node);
  for (const from of granters) {
    node.step({
      type: "vote-response",
      from,
      to: node.id,
      term: node.status().term,
      preVote: false,
      granted: true,
    });
  }
  drain(node);
  if (node.status().role !== "leader") throw new Error(`${node.id} did not become leader`);
}

export function appendMessage(
  fields: Pick<AppendRequest, "from" | "to" | "term" | "prevIndex" | "prevTerm"> &
    Partial<Pick<AppendRequest, "entries" | "commit" | "commitOnly">>,
): AppendRequest {
  return { type: "append", entries: [], commit: 0, commitOnly: false, ...fields };
}

export function voteMessage(
  fields: Pick<VoteRequest, "from" | "to" | "term" | "lastLogIndex" | "lastLogTerm"> &
    Partial<Pick<VoteRequest, "preVote" | "transfer">>,
): VoteRequest {
  return { type: "vote", preVote: false, transfer: false, ...fields };
}

/** Entries `noop@from..` with the given terms, for append requests. */
export function noops(from: number, terms: readonly number[]): Entry[] {
  return terms.map((term, i) => ({ kind: "noop", index: from + i, term }));
}

/**
 * Delivers `messages` among `nodes` (and every answer they cause) until none is left for them;
 * messages to other ids are dropped. Returns what was delivered, in order.
 */
export function exchange(nodes: readonly RaftNode[], messages: readonly Message[]): Message[] {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const queue = [...messages];
  const delivered: Message[] = [];
  while (queue.length > 0) {
    if (delivered.length > 10_000) throw new Error("the exchange never went quiet");
    const message = queue.shift() as Message;
    const target = byId.get(message.to);
    if (!target) continue;
    delivered.push(message);
    target.step(message);
    queue.push(...drain(target).messages);
  }
  return delivered;
}
