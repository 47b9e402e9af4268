/**
 * Simulated clients: each runs one operation at a time against the node it believes is the
 * leader (following "not leader" hints), with a timeout after which the outcome is unknown. Half
 * the writes are also answered by another member, whichever applies them first (as a secondary
 * answers a write it forwarded).
 * Every operation lands in a history for the linearizability checker, except those that
 * certainly never took effect (refused by a non-leader, overwritten in the log, failed read).
 */
import type { Prng } from "../lib/prng.ts";
import type { RaftNode } from "../raft/raft-node.ts";
import type { NodeId } from "../raft/types.ts";
import type { EventQueue } from "./event-queue.ts";
import { encodeCommand, type KvMachine } from "./kv-machine.ts";
import { HistoryRecorder, type Operation, type OperationHandle } from "./linearizability/history.ts";
import type { KvInput, KvOutput } from "./linearizability/kv-model.ts";
import type { SimNode } from "./sim-node.ts";

interface ClientState {
  readonly id: number;
  /** Share of reads: some clients mostly read (dashboards, caches), others mostly write. */
  readonly readShare: number;
  leaderGuess: NodeId | null;
  /** Successful operations still required in the liveness phase. */
  livenessOpsLeft: number;
  busy: boolean;
}

interface InFlight {
  readonly client: ClientState;
  readonly input: KvInput;
  readonly handle: OperationHandle;
  settled: boolean;
}

export interface WorkloadCounters {
  ok: number;
  failed: number;
  unknown: number;
}

export class Workload {
  readonly recorder: HistoryRecorder<KvInput, KvOutput>;
  readonly counters: WorkloadCounters = { ok: 0, failed: 0, unknown: 0 };
  /** New operations are issued only while active; the liveness phase switches to counted ops. */
  mode: "active" | "liveness" | "stopped" = "active";
  readonly #clients: ClientState[] = [];
  readonly #failedHandles = new Set<number>();
  readonly #writes = new Map<string, InFlight>();
  readonly #reads = new Map<number, InFlight>();
  #readSeq = 0;
  #opSeq = 0;
  #valueSeq = 0;
  readonly #queue: EventQueue;
  readonly #prng: Prng;
  readonly #nodes: readonly SimNode[];
  readonly #keys: readonly string[];
  readonly #tickUnits: number;
  readonly #timeoutTicks: number;

  constructor(context: {
    queue: EventQueue;
    prng: Prng;
    nodes: readonly SimNode[];
    clientCount: number;
    keys: readonly string[];
    tickUnits: number;
    timeoutTicks: number;
  }) {
    this.#queue = context.queue;
    this.#prng = context.prng;
    this.#nodes = context.nodes;
    this.#keys = context.keys;
    this.#tickUnits = context.tickUnits;
    this.#timeoutTicks = context.timeoutTicks;
    this.recorder = new HistoryRecorder({ now: () => context.queue.now });
    for (let id = 1; id <= context.clientCount; id++) {
      const readShare = this.#prng.pick([0.2, 0.4, 0.9]);
      this.#clients.push({ id, readShare, leaderGuess: null, livenessOpsLeft: 0, busy: false });
    }
  }

  start(): void {
    for (const client of this.#clients) this.#next(client);
  }

  /** From now on each client must complete `count` more operations (liveness). */
  requireCompletions(count: number): void {
    this.mode = "liveness";
    for (const client of this.#clients) {
      client.livenessOpsLeft = count;
      if (!client.busy) this.#next(client);
    }
  }

  get livenessSatisfied(): boolean {
    return this.#clients.every((client) => client.livenessOpsLeft === 0);
  }

  /** The history without operations that certainly did not happen. */
  history(): Operation<KvInput, KvOutput>[] {
    return this.recorder.history().filter((_, index) => !this.#failedHandles.has(index));
  }

  #next(client: ClientState): void {
    if (this.mode === "stopped" || (this.mode === "liveness" && client.livenessOpsLeft === 0)) {
      client.busy = false;
      return;
    }
    client.busy = true;
    this.#queue.after(this.#prng.between(0, 2 * this.#tickUnits), () => this.#issue(client));
  }

  #issue(client: ClientState): void {
    const input = this.#randomInput(client.readShare);
    const operation: InFlight = {
      client,
      input,
      handle: this.recorder.invoke(client.id, input),
      settled: false,
    };
    this.#queue.after(this.#timeoutTicks * this.#tickUnits, () => {
      if (operation.settled) return;
      operation.settled = true;
      this.recorder.unknown(operation.handle);
      this.counters.unknown++;
      client.leaderGuess = null;
      this.#next(client);
    });
    const node = this.#pickNode(client);
    if (node === null) {
      this.#fail(operation, null);
      return;
    }
    node.requests.push((raft) => this.#submit(node, raft, operation));
    node.drive();
  }

  #submit(node: SimNode, raft: RaftNode, operation: InFlight): void {
    if (operation.settled) return;
    const { input } = operation;
    const viaReadIndex = input.op === "get" && this.#prng.chance(0.7);
    if (viaReadIndex) {
      const id = ++this.#readSeq;
      const result = raft.readIndex(id);
      if (result.ok) this.#reads.set(id, operation);
      else this.#fail(operation, result.leader);
      return;
    }
    const command = encodeCommand({ client: operation.client.id, opId: ++this.#opSeq, command: input });
    const result = raft.propose(command);
    if (!result.ok) {
      this.#fail(operation, result.leader);
      return;
    }
    node.pendingWrites.set(result.index, result.term);
    this.#writes.set(`${node.id}:${result.index}`, operation);
    // A write forwarded by a secondary is answered by whichever of the two applies it first: the
    // runtime's secondary answers from its own state machine once the primary told it the entry's
    // index (src/runtime/forward-origins.ts), which durable notices let it commit early. So the
    // history holds writes answered by followers, which a read at the leader must then see.
    if (this.#prng.chance(0.5)) {
      const others = this.#nodes.filter((other) => other !== node && other.raft !== null);
      const other = others.length > 0 ? others[this.#prng.nextInt(others.length)] : undefined;
      if (other !== undefined && !other.pendingWrites.has(result.index)) {
        other.pendingWrites.set(result.index, result.term);
        this.#writes.set(`${other.id}:${result.index}`, operation);
      }
    }
  }

  writeResolved(node: SimNode, index: number, output: KvOutput | "lost"): void {
    const key = `${node.id}:${index}`;
    const operation = this.#writes.get(key);
    if (!operation) return;
    this.#writes.delete(key);
    if (output === "lost") this.#fail(operation, null);
    else this.#complete(operation, output, node.id);
  }

  readServed(node: SimNode, readId: number, machine: KvMachine): void {
    const operation = this.#reads.get(readId);
    if (!operation) return;
    this.#reads.delete(readId);
    if (operation.input.op !== "get") return;
    this.#complete(operation, { op: "get", value: machine.read(operation.input.key) }, node.id);
  }

  readFailed(readId: number): void {
    const operation = this.#reads.get(readId);
    if (!operation) return;
    this.#reads.delete(readId);
    this.#fail(operation, null);
  }

  #complete(operation: InFlight, output: KvOutput, servedBy: NodeId): void {
    if (operation.settled) return;
    operation.settled = true;
    this.recorder.complete(operation.handle, output);
    this.counters.ok++;
    const { client } = operation;
    client.leaderGuess = servedBy;
    if (client.livenessOpsLeft > 0) client.livenessOpsLeft--;
    this.#next(client);
  }

  /** The operation certainly did not take effect: leave it out of the history. */
  #fail(operation: InFlight, leaderHint: NodeId | null): void {
    if (operation.settled) return;
    operation.settled = true;
    this.recorder.unknown(operation.handle);
    this.#failedHandles.add(operation.handle.index);
    this.counters.failed++;
    operation.client.leaderGuess = leaderHint;
    this.#next(operation.client);
  }

  #pickNode(client: ClientState): SimNode | null {
    // Mostly follow the last known leader; sometimes ask anyone, as clients spread over a
    // cluster do (this is what lets a deposed leader's answers reach the history).
    const guess =
      client.leaderGuess === null ? undefined : this.#nodes.find((n) => n.id === client.leaderGuess);
    if (guess?.up && this.#prng.chance(0.75)) return guess;
    const up = this.#nodes.filter((node) => node.up);
    return up.length === 0 ? null : this.#prng.pick(up);
  }

  #randomInput(readShare: number): KvInput {
    const key = this.#prng.pick(this.#keys);
    const value = `v${++this.#valueSeq}`;
    if (this.#prng.chance(readShare)) return { op: "get", key };
    const roll = this.#prng.nextFloat();
    if (roll < 0.6) return { op: "put", key, value };
    if (roll < 0.75) return { op: "delete", key };
    const expected = this.#prng.chance(0.3)
      ? null
      : `v${this.#prng.between(Math.max(1, this.#valueSeq - 5), this.#valueSeq)}`;
    return { op: "cas", key, expected, value };
  }
}
