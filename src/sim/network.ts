/**
 * A simulated network: per-message delay (so messages reorder), drops, duplicates, and
 * partitions of every shape (a blocked set of directed links: symmetric, one-way, partial).
 */
import type { Prng } from "../lib/prng.ts";
import type { Message, NodeId } from "../raft/types.ts";
import type { EventQueue } from "./event-queue.ts";

export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  /** Probability that a message takes a long detour (reordering it past later ones). */
  delaySpikeRate: number;
}

export const calmNetwork: NetworkFaults = { dropRate: 0, duplicateRate: 0, delaySpikeRate: 0 };

export interface NetworkCounters {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  blocked: number;
}

export class SimNetwork {
  faults: NetworkFaults = { ...calmNetwork };
  readonly counters: NetworkCounters = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, blocked: 0 };
  #blocked = new Set<string>();
  readonly #queue: EventQueue;
  readonly #prng: Prng;
  readonly #deliver: (message: Message) => void;
  readonly #delayMin: number;
  readonly #delayMax: number;

  constructor(
    queue: EventQueue,
    prng: Prng,
    deliver: (message: Message) => void,
    delay: { min: number; max: number },
  ) {
    this.#queue = queue;
    this.#prng = prng;
    this.#deliver = deliver;
    this.#delayMin = delay.min;
    this.#delayMax = delay.max;
  }

  send(message: Message): void {
    this.counters.sent++;
    if (this.#blocked.has(linkKey(message.from, message.to))) {
      this.counters.blocked++;
      return;
    }
    if (this.#prng.chance(this.faults.dropRate)) {
      this.counters.dropped++;
      return;
    }
    this.#schedule(message);
    if (this.#prng.chance(this.faults.duplicateRate)) {
      this.counters.duplicated++;
      this.#schedule(message);
    }
  }

  #schedule(message: Message): void {
    let delay = this.#prng.between(this.#delayMin, this.#delayMax);
    if (this.#prng.chance(this.faults.delaySpikeRate))
      delay += this.#prng.between(this.#delayMax, this.#delayMax * 20);
    this.#queue.after(delay, () => {
      // A partition that appears while a message is in flight cuts it too.
      if (this.#blocked.has(linkKey(message.from, message.to))) {
        this.counters.blocked++;
        return;
      }
      this.counters.delivered++;
      this.#deliver(message);
    });
  }

  block(from: NodeId, to: NodeId): void {
    this.#blocked.add(linkKey(from, to));
  }

  /** Cuts every link between the two groups, both ways. */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        this.block(a, b);
        this.block(b, a);
      }
    }
  }

  heal(): void {
    this.#blocked.clear();
  }

  get partitioned(): boolean {
    return this.#blocked.size > 0;
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
