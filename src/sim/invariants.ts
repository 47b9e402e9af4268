/**
 * Cross-replica safety invariants of Raft (Figure 3 of the paper), checked as the simulation runs:
 *
 * - election safety: at most one leader per term;
 * - log matching: two logs holding an entry with the same index and term hold the same entry and
 *   the same term before it (checked on every persisted entry against a global record, which by
 *   induction gives identical prefixes);
 * - leader completeness: a leader holds every entry committed in an earlier term;
 * - state-machine safety: every replica applies the same entry at each index, in order;
 * - commit index never decreases, in memory or on disk;
 * - membership: at most one uncommitted configuration entry, and none appended by a leader
 *   before it committed an entry of its own term.
 *
 * A violation is recorded (not thrown) so the run can report the seed, time and details.
 */
import type { RaftNode } from "../raft/raft-node.ts";
import type { Entry, HardState, NodeId, SnapshotMeta } from "../raft/types.ts";

interface EntryRecord {
  readonly fingerprint: string;
  readonly prevTerm: number;
}

export class InvariantChecker {
  checks = 0;
  readonly violations: string[] = [];
  /** term → the node that led it. */
  readonly #leaders = new Map<number, NodeId>();
  /** "index/term" → what that entry is. */
  readonly #entries = new Map<string, EntryRecord>();
  /** index → fingerprint of the entry committed (applied) there. */
  readonly #committed = new Map<number, string>();
  #committedMax = 0;
  readonly #appliedIndex = new Map<NodeId, number>();
  readonly #commitSeen = new Map<NodeId, number>();
  readonly #commitTerm = new Map<number, number>();
  readonly #leaderTermsChecked = new Set<string>();
  #now: () => number = () => 0;

  setClock(now: () => number): void {
    this.#now = now;
  }

  #fail(message: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.#now()}: ${message}`);
  }

  nodeStarted(id: NodeId, raft: RaftNode, _seed: number): void {
    const status = raft.status();
    this.#appliedIndex.set(id, status.applied);
    this.#commitSeen.set(id, status.commit);
  }

  /** Called after every batch of input a node handled. */
  observe(id: NodeId, raft: RaftNode): void {
    this.checks++;
    const status = raft.status();
    const previousCommit = this.#commitSeen.get(id) ?? 0;
    if (status.commit < previousCommit)
      this.#fail(`${id}: commit went back from ${previousCommit} to ${status.commit}`);
    // The term in which each index became committed (the lowest term any node saw it committed in).
    for (let index = previousCommit + 1; index <= status.commit; index++) {
      const known = this.#commitTerm.get(index);
      if (known === undefined || status.term < known) this.#commitTerm.set(index, status.term);
    }
    this.#commitSeen.set(id, status.commit);
    if (status.role !== "leader") return;
    const leader = this.#leaders.get(status.term);
    if (leader === undefined) this.#leaders.set(status.term, id);
    else if (leader !== id) this.#fail(`two leaders in term ${status.term}: ${leader} and ${id}`);
    const key = `${id}/${status.term}`;
    if (!this.#leaderTermsChecked.has(key)) {
      this.#leaderTermsChecked.add(key);
      this.#checkLeaderCompleteness(id, raft);
    }
    this.#checkMembershipRules(id, raft);
  }

  /**
   * Leader completeness: an entry committed in term t is in the log of every leader of a term
   * above t. (A leader of an older term, elected late, may lack entries committed since.)
   */
  #checkLeaderCompleteness(id: NodeId, raft: RaftNode): void {
    const log = raft.log;
    const term = raft.status().term;
    for (let index = log.firstIndex(); index <= this.#committedMax; index++) {
      const committed = this.#committed.get(index);
      const committedInTerm = this.#commitTerm.get(index);
      if (committed === undefined || committedInTerm === undefined || committedInTerm >= term) continue;
      const entry = log.entry(index);
      if (entry === undefined || fingerprint(entry) !== committed) {
        this.#fail(`leader ${id} (term ${raft.status().term}) lacks committed entry ${index}`);
        return;
      }
    }
  }

  #checkMembershipRules(id: NodeId, raft: RaftNode): void {
    const { commit } = raft.status();
    const uncommitted = raft.log.configIndexes.filter((index) => index > commit).length;
    if (uncommitted > 1) this.#fail(`leader ${id} has ${uncommitted} uncommitted config entries`);
  }

  /** A leader accepted a membership change; `before` is its status just before the call. */
  membershipProposed(id: NodeId, raft: RaftNode, before: { commit: number; term: number }): void {
    this.checks++;
    if (raft.log.term(before.commit) !== before.term) {
      this.#fail(
        `leader ${id} accepted a membership change before committing an entry of term ${before.term}`,
      );
    }
    const pending = raft.log.configIndexes.filter((index) => index > before.commit).length;
    if (pending > 1) this.#fail(`leader ${id} accepted a second membership change while one was pending`);
  }

  /** `prevTerm`: the term of the entry just before the first one (-1 if unknown, e.g. compacted). */
  entriesPersisted(id: NodeId, entries: readonly Entry[], prevTerm: number): void {
    let previous = prevTerm;
    for (const entry of entries) {
      this.checks++;
      const key = `${entry.index}/${entry.term}`;
      const known = this.#entries.get(key);
      const print = fingerprint(entry);
      if (known === undefined) {
        this.#entries.set(key, { fingerprint: print, prevTerm: previous });
      } else if (known.fingerprint !== print) {
        this.#fail(`log matching: ${id} holds a different entry at ${key}`);
      } else if (previous !== -1 && known.prevTerm !== -1 && known.prevTerm !== previous) {
        this.#fail(`log matching: ${id} has term ${previous} before ${key}, another node ${known.prevTerm}`);
      }
      previous = entry.term;
    }
  }

  hardStatePersisted(id: NodeId, before: HardState | null, after: HardState): void {
    this.checks++;
    if (before && after.commit < before.commit) this.#fail(`${id}: persisted commit went back`);
    if (before && after.term < before.term) this.#fail(`${id}: persisted term went back`);
    if (before && after.term === before.term && before.vote !== null && after.vote !== before.vote) {
      this.#fail(`${id}: changed its vote within term ${after.term}`);
    }
  }

  applied(id: NodeId, entry: Entry): void {
    this.checks++;
    const expected = (this.#appliedIndex.get(id) ?? 0) + 1;
    if (entry.index !== expected) this.#fail(`${id} applied ${entry.index}, expected ${expected}`);
    this.#appliedIndex.set(id, entry.index);
    const print = fingerprint(entry);
    const committed = this.#committed.get(entry.index);
    if (committed === undefined) {
      this.#committed.set(entry.index, print);
      this.#committedMax = Math.max(this.#committedMax, entry.index);
    } else if (committed !== print) {
      this.#fail(`state-machine safety: ${id} applied a different entry at ${entry.index}`);
    }
  }

  snapshotInstalled(id: NodeId, meta: SnapshotMeta): void {
    this.#appliedIndex.set(id, meta.index);
  }
}

function fingerprint(entry: Entry): string {
  switch (entry.kind) {
    case "command":
      return `${entry.term}:c:${Buffer.from(entry.data).toString("base64")}`;
    case "config":
      return `${entry.term}:m:${entry.membership.voters.join(",")}|${entry.membership.learners.join(",")}`;
    case "noop":
      return `${entry.term}:n`;
  }
}
