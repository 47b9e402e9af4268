/**
 * Benchmark: the consensus core alone. A 3-node cluster in one process, no IO, no encoding:
 * the leader proposes 100-byte entries in batches, Ready batches are handed over synchronously
 * (persist is a no-op), and we count entries committed (and applied on the leader) per second.
 * This is the ceiling the rest of the stack (disk, network, state machine) eats into.
 */
import { Prng } from "../src/lib/prng.ts";
import { RaftNode } from "../src/raft/raft-node.ts";
import type { Message } from "../src/raft/types.ts";

export interface CoreBenchResult {
  entries: number;
  batch: number;
  seconds: number;
  entriesPerSecond: number;
  cpuMicrosecondsPerEntry: number;
}

function cluster(): Map<string, RaftNode> {
  const ids = ["a", "b", "c"];
  const nodes = new Map<string, RaftNode>();
  for (const [i, id] of ids.entries()) {
    nodes.set(
      id,
      new RaftNode(
        {
          id,
          prng: new Prng(i + 1),
          electionTimeoutTicks: 10,
          heartbeatTicks: 1,
          uncommittedEntriesMax: 1 << 20,
        },
        RaftNode.bootstrap({ voters: ids, learners: [] }),
      ),
    );
  }
  return nodes;
}

/** Hands every Ready over until no node has work; returns entries applied on `leaderId`. */
function pump(nodes: Map<string, RaftNode>, leaderId: string): number {
  let applied = 0;
  let inFlight: Message[] = [];
  for (;;) {
    for (const node of nodes.values()) {
      if (!node.hasReady()) continue;
      const ready = node.ready();
      if (ready.messages.length > 0) inFlight = inFlight.concat(ready.messages);
      if (node.id === leaderId) applied += ready.committed.length;
      node.advance();
    }
    if (inFlight.length === 0) return applied;
    const batch = inFlight;
    inFlight = [];
    for (const message of batch) nodes.get(message.to)?.step(message);
  }
}

export function runCoreBench(entries = 1_000_000, batch = 1024): CoreBenchResult {
  const nodes = cluster();
  const leader = nodes.get("a") as RaftNode;
  leader.campaign();
  pump(nodes, "a");
  if (leader.status().role !== "leader") throw new Error("no leader");
  const payload = new Uint8Array(100).fill(7);
  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  let proposed = 0;
  let applied = 0;
  while (applied < entries) {
    for (let i = 0; i < batch && proposed < entries; i++, proposed++) {
      const result = leader.propose(payload);
      if (!result.ok) throw new Error(`proposal refused: ${result.reason}`);
    }
    applied += pump(nodes, "a");
    // Compact now and then so memory stays bounded, as a real node does after snapshots.
    const status = leader.status();
    if (status.applied - status.firstIndex > 200_000) {
      for (const node of nodes.values()) {
        const s = node.status();
        const term = node.log.term(s.applied) ?? s.term;
        node.compact({ index: s.applied, term, membership: s.membership, sizeBytes: 0 }, s.applied - 1000);
      }
    }
  }
  const seconds = (performance.now() - began) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    entries: applied,
    batch,
    seconds,
    entriesPerSecond: applied / seconds,
    cpuMicrosecondsPerEntry: (cpu.user + cpu.system) / applied,
  };
}

if (import.meta.main) {
  for (const batch of [64, 1024]) {
    const result = runCoreBench(1_000_000, batch);
    console.log(
      `raft core, 3 nodes in one process, 100-byte entries, batch ${batch}: ${Math.round(result.entriesPerSecond).toLocaleString("en")} entries/s, ${result.cpuMicrosecondsPerEntry.toFixed(2)} µs CPU per entry (all 3 nodes)`,
    );
  }
}
