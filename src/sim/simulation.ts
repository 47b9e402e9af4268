/**
 * One simulated run, a pure function of its seed: a 3- or 5-member cluster of real RaftNodes on a
 * simulated network, disk and clock, a KV workload, and a fault schedule (crashes that lose unsynced
 * state, restarts, partitions of every shape, pauses, drops, duplicates, delay spikes, clock skew,
 * membership changes, leadership transfers). Then a liveness phase: faults stop, and within a bound
 * there must be a leader, every client must complete its operations, and every member catch up.
 * Safety invariants are checked throughout, and the client history for linearizability at the end.
 */
import { AssertionFailure } from "../lib/assert.ts";
import { Prng } from "../lib/prng.ts";
import type { RaftMutation } from "../raft/api-types.ts";
import { RaftNode } from "../raft/raft-node.ts";
import type { Message, NodeId } from "../raft/types.ts";
import { EventQueue } from "./event-queue.ts";
import { FaultInjector } from "./faults.ts";
import { InvariantChecker } from "./invariants.ts";
import { checkLinearizability } from "./linearizability/checker.ts";
import { kvModel } from "./linearizability/kv-model.ts";
import { calmNetwork, SimNetwork } from "./network.ts";
import { type SimDisk, type SimMutation, SimNode, type SimNodeSettings } from "./sim-node.ts";
import { TICK_UNITS } from "./sim-time.ts";
import { Workload } from "./workload.ts";

export interface SeedOptions {
  readonly faultTicks?: number;
  readonly livenessTicksMax?: number;
  /** Deliberately broken rules, to show that the checks bite. */
  readonly mutations?: readonly RaftMutation[];
  /**
   * How members handle a Ready (sim-node.ts): "in-turn" (default) persists, sends and applies it in
   * that order; "as-runtime" does what src/runtime does — a leader's replication leaves before its
   * write, and committed entries already on this member's disk are applied while it writes.
   */
  readonly writes?: "in-turn" | "as-runtime";
  /** Rules of the Ready contract broken on purpose by the simulated members. */
  readonly simMutations?: readonly SimMutation[];
}

export interface SeedResult {
  readonly seed: number;
  readonly nodes: number;
  readonly violations: readonly string[];
  readonly livenessFailure: string | null;
  readonly linearizability: "ok" | "violation" | "unknown";
  readonly linearizabilityDetail: string | null;
  readonly operations: { ok: number; failed: number; unknown: number; checked: number };
  readonly faults: Readonly<Record<string, number>>;
  readonly invariantChecks: number;
  /** Ticks from a leader crash (on a healthy cluster) to the next leader. */
  readonly recoveryTicks: readonly number[];
  readonly simulatedTicks: number;
}

/** Runs one seed. A broken assertion inside the core or the simulator counts as a safety violation. */
export function runSeed(seed: number, options: SeedOptions = {}): SeedResult {
  try {
    return simulate(seed, options);
  } catch (error) {
    if (!(error instanceof AssertionFailure)) throw error;
    return {
      seed,
      nodes: 0,
      violations: [`assertion failed: ${error.message}`],
      livenessFailure: null,
      linearizability: "unknown",
      linearizabilityDetail: "run aborted",
      operations: { ok: 0, failed: 0, unknown: 0, checked: 0 },
      faults: {},
      invariantChecks: 0,
      recoveryTicks: [],
      simulatedTicks: 0,
    };
  }
}

function simulate(seed: number, options: SeedOptions): SeedResult {
  const faultTicks = options.faultTicks ?? 300;
  const livenessTicksMax = options.livenessTicksMax ?? 400;
  const prng = new Prng(seed);
  const queue = new EventQueue();
  const checker = new InvariantChecker();
  checker.setClock(() => queue.now);
  const size = prng.pick([3, 3, 5]);
  const ids: NodeId[] = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const settings: SimNodeSettings = {
    electionTimeoutTicks: 10,
    heartbeatTicks: prng.pick([1, 2, 3]),
    diskLatencyMax: prng.pick([0, 2, 5]),
    snapshotEveryEntries: prng.pick([8, 25, 100, 100_000]),
    snapshotChunkBytes: prng.pick([16, 128, 1 << 20]),
    leaseDriftTicks: prng.pick([null, null, 4]),
    mutations: options.mutations ?? [],
    checkQuorum: prng.pick([true, true, false]),
    inflightMax: prng.pick([1, 8]),
    appendEntriesMax: prng.pick([1, 4, 16]),
    // Small limits make the in-flight byte bound act with the simulation's small commands.
    inflightBytesMax: prng.pick([16, 256, 8 * 1024 * 1024]),
    writes: options.writes ?? "in-turn",
    simMutations: options.simMutations ?? [],
  };
  const nodes = new Map<NodeId, SimNode>();
  const network = new SimNetwork(
    queue,
    prng.fork(),
    (message: Message) => {
      const node = nodes.get(message.to);
      if (!node?.up) return;
      node.inbox.push(message);
      node.drive();
    },
    { min: 1, max: 4 },
  );
  const bootstrap = RaftNode.bootstrap({ voters: ids, learners: [] });
  let workload: Workload | null = null;
  for (const id of ids) {
    const disk: SimDisk = {
      hardState: bootstrap.hardState,
      snapshots: [],
      entries: [...bootstrap.entries],
      incoming: null,
    };
    const node = new SimNode(id, disk, {
      queue,
      prng: prng.fork(),
      checker,
      settings,
      hooks: {
        send: (message) => network.send(message),
        writeResolved: (n, index, _term, result) => workload?.writeResolved(n, index, result),
        readServed: (n, readId, machine) => workload?.readServed(n, readId, machine),
        readFailed: (_n, readId) => workload?.readFailed(readId),
      },
    });
    nodes.set(id, node);
    node.start(seed);
  }
  const nodeList = [...nodes.values()];
  for (const node of nodeList) scheduleTicks(queue, node, TICK_UNITS + prng.between(-2, 2));
  workload = new Workload({
    queue,
    prng: prng.fork(),
    nodes: nodeList,
    clientCount: prng.between(3, 8),
    keys: ["a", "b", "c"].slice(0, prng.between(1, 3)),
    tickUnits: TICK_UNITS,
    timeoutTicks: 20,
  });
  workload.start();

  const faults = new FaultInjector({ queue, prng: prng.fork(), nodes: nodeList, network, checker, seed });
  const faultEnd = faultTicks * TICK_UNITS;
  for (let tick = 1; tick < faultTicks; tick++) queue.at(tick * TICK_UNITS, () => faults.maybeInject());
  runUntil(queue, faultEnd);

  // Liveness: no more faults; everything heals; bounded time to make progress.
  faults.stop();
  network.heal();
  network.faults = { ...calmNetwork };
  for (const node of nodeList) {
    node.paused = false;
    if (!node.up) node.start(seed);
    node.drive();
  }
  workload.requireCompletions(2);
  const deadline = faultEnd + livenessTicksMax * TICK_UNITS;
  let livenessFailure: string | null = "no progress before the liveness deadline";
  while (queue.now < deadline) {
    runUntil(queue, queue.now + TICK_UNITS);
    const leader = nodeList.find((n) => n.raft?.status().role === "leader");
    if (leader && workload.livenessSatisfied && caughtUp(nodeList, leader)) {
      livenessFailure = null;
      break;
    }
  }
  if (livenessFailure !== null) livenessFailure = describeStall(nodeList, workload);
  workload.mode = "stopped";

  const history = workload.history();
  const check = checkLinearizability(history, kvModel, { stepsMax: 2_000_000 });
  return {
    seed,
    nodes: size,
    violations: checker.violations,
    livenessFailure,
    linearizability: check.result,
    linearizabilityDetail:
      check.result === "violation" ? check.explanation : check.result === "unknown" ? check.reason : null,
    operations: { ...workload.counters, checked: history.length },
    faults: faults.counts,
    invariantChecks: checker.checks,
    recoveryTicks: faults.recoveryTicks,
    simulatedTicks: Math.round(queue.now / TICK_UNITS),
  };
}

function scheduleTicks(queue: EventQueue, node: SimNode, periodUnits: number): void {
  // A paused process (SIGSTOP, a long GC) misses no time: like the real runtime, which turns
  // elapsed monotonic time into ticks, it catches up on every tick when it resumes.
  const tick = (): void => {
    if (node.up) {
      node.ticksDue++;
      node.drive();
    }
    queue.after(periodUnits, tick);
  };
  queue.after(periodUnits, tick);
}

function runUntil(queue: EventQueue, time: number): void {
  while (queue.runNext(time)) {
    // run every event due by `time`
  }
  queue.now = Math.max(queue.now, time);
}

/** Every member of the leader's configuration has applied everything the leader committed. */
function caughtUp(nodes: readonly SimNode[], leader: SimNode): boolean {
  const status = leader.raft?.status();
  if (!status) return false;
  const members = new Set([...status.membership.voters, ...status.membership.learners]);
  return nodes.every((node) => {
    if (!members.has(node.id)) return true;
    const s = node.raft?.status();
    return s !== undefined && s.applied >= status.commit;
  });
}

function describeStall(nodes: readonly SimNode[], workload: Workload): string {
  const states = nodes.map((node) => {
    const s = node.raft?.status();
    return s
      ? `${node.id}:${s.role}/t${s.term}/c${s.commit}/a${s.applied}/l${s.lastIndex}`
      : `${node.id}:down`;
  });
  return `liveness: no stable leader with caught-up members and completed client operations (${states.join(" ")}; clients done: ${workload.livenessSatisfied})`;
}
