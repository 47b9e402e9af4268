/**
 * The fault schedule of a simulated run. Once per tick it may inject one fault; every fault heals
 * by itself after a random while, and `stop()` ends them all for the liveness phase.
 * It also measures recovery: after it crashes the leader of a healthy cluster, the ticks until
 * some node leads a newer term.
 */
import type { Prng } from "../lib/prng.ts";
import type { NodeId } from "../raft/types.ts";
import type { EventQueue } from "./event-queue.ts";
import type { InvariantChecker } from "./invariants.ts";
import type { SimNetwork } from "./network.ts";
import type { SimNode } from "./sim-node.ts";
import { TICK_UNITS } from "./sim-time.ts";

export type FaultKind =
  | "crash"
  | "leader-crash"
  | "partition-isolate"
  | "partition-isolate-leader"
  | "partition-split"
  | "partition-one-way"
  | "partition-partial"
  | "pause"
  | "lossy-network"
  | "membership-change"
  | "leadership-transfer";

/** Probability per tick of each fault. */
const faultRates: ReadonlyArray<[FaultKind, number]> = [
  ["crash", 0.008],
  ["leader-crash", 0.008],
  ["partition-isolate", 0.005],
  ["partition-isolate-leader", 0.005],
  ["partition-split", 0.003],
  ["partition-one-way", 0.003],
  ["partition-partial", 0.003],
  ["pause", 0.005],
  ["lossy-network", 0.008],
  ["membership-change", 0.01],
  ["leadership-transfer", 0.005],
];

export class FaultInjector {
  readonly counts: Record<string, number> = {};
  readonly recoveryTicks: number[] = [];
  #stopped = false;
  #recovery: { since: number; term: number } | null = null;
  readonly #queue: EventQueue;
  readonly #prng: Prng;
  readonly #nodes: readonly SimNode[];
  readonly #network: SimNetwork;
  readonly #checker: InvariantChecker;
  readonly #seed: number;

  constructor(context: {
    queue: EventQueue;
    prng: Prng;
    nodes: readonly SimNode[];
    network: SimNetwork;
    checker: InvariantChecker;
    seed: number;
  }) {
    this.#queue = context.queue;
    this.#prng = context.prng;
    this.#nodes = context.nodes;
    this.#network = context.network;
    this.#checker = context.checker;
    this.#seed = context.seed;
  }

  stop(): void {
    this.#stopped = true;
    this.#recovery = null;
  }

  maybeInject(): void {
    this.#measureRecovery();
    if (this.#stopped) return;
    for (const [kind, rate] of faultRates) {
      if (!this.#prng.chance(rate)) continue;
      if (this.#inject(kind)) {
        this.counts[kind] = (this.counts[kind] ?? 0) + 1;
        if (kind !== "leader-crash") this.#recovery = null; // another fault spoils the measurement
      }
      return;
    }
  }

  #inject(kind: FaultKind): boolean {
    switch (kind) {
      case "crash":
        return this.#crash(this.#pickUp());
      case "leader-crash":
        return this.#crashLeader();
      case "partition-isolate": {
        const node = this.#prng.pick(this.#nodes);
        this.#network.partition(
          [node.id],
          this.#ids().filter((id) => id !== node.id),
        );
        return this.#healLater();
      }
      case "partition-isolate-leader": {
        // Jepsen's favourite: cut the leader off while clients may still talk to it.
        const leader = this.#leader();
        if (!leader) return false;
        this.#network.partition(
          [leader.id],
          this.#ids().filter((id) => id !== leader.id),
        );
        return this.#healLater();
      }
      case "partition-split": {
        const shuffled = this.#shuffledIds();
        const cut = this.#prng.between(1, shuffled.length - 1);
        this.#network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
        return this.#healLater();
      }
      case "partition-one-way": {
        const [from, to] = this.#shuffledIds();
        if (from === undefined || to === undefined) return false;
        this.#network.block(from, to);
        return this.#healLater();
      }
      case "partition-partial": {
        // Some links down, others up: nodes disagree about who is reachable.
        for (let i = 0; i < this.#nodes.length; i++) {
          const [a, b] = this.#shuffledIds();
          if (a !== undefined && b !== undefined) this.#network.partition([a], [b]);
        }
        return this.#healLater();
      }
      case "pause":
        return this.#pause();
      case "lossy-network":
        return this.#lossyNetwork();
      case "membership-change":
        return this.#changeMembership();
      case "leadership-transfer":
        return this.#transferLeadership();
    }
  }

  #crash(node: SimNode | undefined): boolean {
    if (!node) return false;
    node.crash();
    this.#queue.after(this.#prng.between(5, 60) * TICK_UNITS, () => {
      if (!this.#stopped && !node.up) {
        node.start(this.#seed);
        node.drive();
      }
    });
    return true;
  }

  #crashLeader(): boolean {
    const leader = this.#leader();
    if (!leader?.raft) return false;
    const healthy = !this.#network.partitioned && this.#nodes.every((n) => n.up && !n.paused);
    const term = leader.raft.status().term;
    this.#crash(leader);
    this.#recovery = healthy ? { since: this.#queue.now, term } : null;
    return true;
  }

  #measureRecovery(): void {
    const recovery = this.#recovery;
    if (recovery === null) return;
    const leader = this.#leader();
    const term = leader?.raft?.status().term;
    if (term !== undefined && term > recovery.term) {
      this.recoveryTicks.push(Math.round((this.#queue.now - recovery.since) / TICK_UNITS));
      this.#recovery = null;
    }
  }

  #healLater(): boolean {
    this.#queue.after(this.#prng.between(10, 80) * TICK_UNITS, () => this.#network.heal());
    return true;
  }

  #pause(): boolean {
    const node = this.#pickUp();
    if (!node || node.paused) return false;
    node.paused = true;
    this.#queue.after(this.#prng.between(5, 40) * TICK_UNITS, () => {
      node.paused = false;
      node.drive();
    });
    return true;
  }

  #lossyNetwork(): boolean {
    this.#network.faults = {
      dropRate: this.#prng.pick([0, 0.05, 0.2]),
      duplicateRate: this.#prng.pick([0, 0.05, 0.1]),
      delaySpikeRate: this.#prng.pick([0, 0.02, 0.1]),
    };
    return true;
  }

  /** Cycles members through remove → add as standby → promote, through the real leader. */
  #changeMembership(): boolean {
    const leader = this.#leader();
    const raft = leader?.raft;
    if (!leader || !raft || leader.busy) return false;
    const before = raft.status();
    const all = this.#ids();
    const members = new Set([...before.membership.voters, ...before.membership.learners]);
    const outside = all.filter((id) => !members.has(id));
    let result: ReturnType<typeof raft.proposeMembership>;
    if (before.membership.learners.length > 0) {
      result = raft.proposeMembership({ kind: "promote", node: this.#prng.pick(before.membership.learners) });
    } else if (outside.length > 0) {
      result = raft.proposeMembership({ kind: "add-learner", node: this.#prng.pick(outside) });
    } else if (before.membership.voters.length > 2) {
      result = raft.proposeMembership({ kind: "remove", node: this.#prng.pick(before.membership.voters) });
    } else {
      return false;
    }
    if (result.ok) this.#checker.membershipProposed(leader.id, raft, before);
    leader.drive();
    return result.ok;
  }

  #transferLeadership(): boolean {
    const leader = this.#leader();
    const raft = leader?.raft;
    if (!leader || !raft || leader.busy) return false;
    const target = this.#prng.pick(raft.status().membership.voters);
    const result = raft.transferLeadership(target);
    leader.drive();
    return result.ok;
  }

  #leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const node of this.#nodes) {
      const status = node.raft?.status();
      if (status?.role === "leader" && (!best || status.term > (best.raft?.status().term ?? 0))) best = node;
    }
    return best;
  }

  #pickUp(): SimNode | undefined {
    const up = this.#nodes.filter((n) => n.up);
    return up.length === 0 ? undefined : this.#prng.pick(up);
  }

  #ids(): NodeId[] {
    return this.#nodes.map((n) => n.id);
  }

  #shuffledIds(): NodeId[] {
    const ids = this.#ids();
    for (let i = ids.length - 1; i > 0; i--) {
      const j = this.#prng.nextInt(i + 1);
      [ids[i], ids[j]] = [ids[j] as NodeId, ids[i] as NodeId];
    }
    return ids;
  }
}
