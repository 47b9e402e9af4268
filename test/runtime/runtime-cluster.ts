/**
 * A cluster of real {@link RaftRuntime}s over the in-memory adapters (MemoryDisk, MemoryTransport)
 * with one manual clock: time moves only in `run`, so elections and timeouts are deterministic
 * in count of ticks, while the IO (promises, setImmediate) is the real asynchronous path.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { MemoryDisk } from "../../src/adapters/storage/memory-storage.ts";
import { MemoryNetwork, MemoryTransport } from "../../src/adapters/transport/memory-transport.ts";
import { Prng } from "../../src/lib/prng.ts";
import type { Logger } from "../../src/ports/logger.ts";
import type { PeerAddress, SendOptions, Transport } from "../../src/ports/transport.ts";
import { RaftRuntime, type RaftRuntimeOptions } from "../../src/runtime/raft-runtime.ts";
import type { RuntimeEvents } from "../../src/runtime/runtime-events.ts";
import { KvStateMachine } from "./kv-test-machine.ts";
import { ManualClock } from "./manual-clock.ts";

export const tickIntervalMs = 10;

const quietLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

export interface Member {
  readonly id: string;
  readonly disk: MemoryDisk;
  runtime: RaftRuntime;
  machine: KvStateMachine;
  readonly fatal: RuntimeEvents["fatal"][];
  /** Calls of storage.sync() since the member was created. */
  syncs: number;
  /** While set, every storage.sync() waits for it (a slow disk); see RuntimeCluster.holdSyncs. */
  syncGate: Promise<void> | null;
  /** Vote and pre-vote requests the member sent (it campaigned). */
  voteRequests: number;
  /** Called with every message the member hands to its transport (and how to send it), when set. */
  onSend: ((to: string, message: unknown, options?: SendOptions) => void) | null;
  /** When set, a message it returns true for is lost on the way (the transport took it). */
  loses: ((to: string, message: unknown) => boolean) | null;
  /** Called when the member asks its transport to write what is queued (Transport.flush), when set. */
  onFlush: (() => void) | null;
}

export class RuntimeCluster {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork();
  readonly members = new Map<string, Member>();
  readonly #ids: string[];
  readonly #overrides: Partial<RaftRuntimeOptions>;
  #seed = 1;

  constructor(ids: readonly string[], overrides: Partial<RaftRuntimeOptions> = {}) {
    this.#ids = [...ids];
    this.#overrides = overrides;
    for (const id of ids) {
      const member: Member = {
        id,
        disk: new MemoryDisk(),
        runtime: null as unknown as RaftRuntime,
        machine: new KvStateMachine(),
        fatal: [],
        syncs: 0,
        syncGate: null,
        voteRequests: 0,
        onSend: null,
        loses: null,
        onFlush: null,
      };
      this.members.set(id, member);
      this.#build(member);
    }
  }

  member(id: string): Member {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  async startAll(): Promise<void> {
    for (const member of this.members.values()) await member.runtime.start();
  }

  async stopAll(): Promise<void> {
    for (const member of this.members.values()) await member.runtime.stop();
  }

  /** Power cut of one member: its runtime is dropped, its disk loses what was not synced. */
  async crash(id: string): Promise<void> {
    const member = this.member(id);
    member.disk.crash();
    await member.runtime.stop();
  }

  /** A new process over the member's disk (and a fresh, empty state machine unless one is given). */
  async restart(id: string, machine: KvStateMachine = new KvStateMachine()): Promise<void> {
    const member = this.member(id);
    member.machine = machine;
    this.#build(member);
    await member.runtime.start();
  }

  /** Makes the member's disk hang: its syncs wait until the returned release is called. */
  holdSyncs(id: string): () => void {
    const member = this.member(id);
    let release = (): void => {};
    member.syncGate = new Promise<void>((resolve) => {
      release = () => {
        member.syncGate = null;
        resolve();
      };
    });
    return release;
  }

  /** Moves time tick by tick (letting IO run between ticks) until `done()` or `ticksMax` ticks. */
  async run(done: () => boolean, ticksMax = 500): Promise<boolean> {
    for (let tick = 0; tick < ticksMax; tick++) {
      await this.settle();
      if (done()) return true;
      this.clock.advance(tickIntervalMs);
    }
    await this.settle();
    return done();
  }

  /** Like {@link run}, but returns the ticks it took (throws if `done` never holds). */
  async runCounting(done: () => boolean, ticksMax = 500): Promise<number> {
    for (let tick = 0; tick <= ticksMax; tick++) {
      await this.settle();
      if (done()) return tick;
      this.clock.advance(tickIntervalMs);
    }
    throw new Error(`not done within ${ticksMax} ticks`);
  }

  /** Lets pending IO (memory transport deliveries, storage promises) run without moving time. */
  async settle(turns = 6): Promise<void> {
    for (let i = 0; i < turns; i++) await nextTurn();
  }

  leaders(): Member[] {
    return [...this.members.values()].filter(
      (member) => member.runtime.running && member.runtime.status().role === "leader",
    );
  }

  async electLeader(ticksMax = 500): Promise<Member> {
    const found = await this.run(() => this.leaders().length === 1, ticksMax);
    const [leader] = this.leaders();
    if (!found || leader === undefined) throw new Error("no single leader elected");
    return leader;
  }

  /** Awaits `promise` while moving time, so that what it waits on can happen. */
  async await<T>(promise: Promise<T>, ticksMax = 500): Promise<T> {
    let settled = false;
    const observed = promise.finally(() => {
      settled = true;
    });
    observed.catch(() => {});
    await this.run(() => settled, ticksMax);
    if (!settled) throw new Error(`still pending after ${ticksMax} ticks`);
    return promise;
  }

  #build(member: Member): void {
    const transport = new MemoryTransport(this.network, {
      self: { nodeId: member.id, name: `${member.id}@mem` },
    });
    const peers: PeerAddress[] = this.#ids.map((id) => ({
      nodeId: id,
      name: `${id}@mem`,
      host: "memory",
      port: 1,
    }));
    transport.setPeers(peers);
    const send = transport.send.bind(transport);
    transport.send = (to, message, options) => {
      if ((message as { type?: unknown }).type === "vote") member.voteRequests++;
      member.onSend?.(to, message, options);
      if (member.loses?.(to, message) === true) return true;
      return send(to, message);
    };
    // The memory transport delivers at the next turn anyway; the hook only records the call.
    (transport as Transport).flush = () => member.onFlush?.();
    const storage = member.disk.storage();
    const sync = storage.sync.bind(storage);
    storage.sync = async () => {
      member.syncs++;
      if (member.syncGate !== null) await member.syncGate;
      return sync();
    };
    member.runtime = new RaftRuntime({
      id: member.id,
      storage,
      transport,
      stateMachine: member.machine,
      clock: this.clock,
      logger: quietLogger,
      prng: new Prng(this.#seed++),
      tickIntervalMs,
      electionTimeoutTicks: 10,
      heartbeatTicks: 2,
      bootstrap: { voters: this.#ids, learners: [] },
      ...this.#overrides,
    });
    member.runtime.on("fatal", (event) => member.fatal.push(event));
  }
}
