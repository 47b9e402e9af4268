/**
 * Tier 2 (TESTING.md): three real node processes serve a concurrent KV workload through the HTTP
 * API while the primary is SIGKILLed and restarted on its data directory every few seconds (and
 * once SIGSTOPped and resumed). Every operation is recorded with its call and return times; the
 * history, closed by one linearizable read per key after the cluster healed, must be
 * linearizable (`checkLinearizability` with `kvModel`). That also proves that no acknowledged
 * write was lost: a lost write makes the final reads, or some read before them, impossible.
 * The clients and what they record: kv-history-workload.ts.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  type CheckResult,
  checkLinearizability,
  type KvInput,
  type KvOutput,
  kvModel,
} from "../../src/sim/linearizability/index.ts";
import { type KvOperation, restart, Workload } from "./kv-history-workload.ts";
import { agreedPrimary, ProcessCluster, waitFor } from "./node-processes.ts";

const names = ["n1", "n2", "n3"];
const keys = ["k0", "k1", "k2", "k3"];

const killCount = 4;
const killIntervalMs = 3_000;
const restartAfterMs = 1_000;
/** Longer than the request timeout: requests held by the paused primary end unknown, and run later. */
const pauseMs = 2_500;

/** Kills the primary every `killIntervalMs` and restarts it on its data dir; then one pause. */
async function injectFaults(cluster: ProcessCluster, workload: Workload, killTimes: number[]): Promise<void> {
  for (let kill = 0; kill < killCount; kill++) {
    await delay(killIntervalMs - restartAfterMs);
    const primary = await waitFor("a primary to kill", 10_000, () => workload.findPrimary());
    killTimes.push(performance.now());
    cluster.signal(primary, "SIGKILL");
    await cluster.node(primary).exited;
    await delay(restartAfterMs);
    await restart(cluster, primary);
  }
  await delay(killIntervalMs - restartAfterMs);
  const paused = await waitFor("a primary to pause", 10_000, () => workload.findPrimary());
  cluster.signal(paused, "SIGSTOP");
  await delay(pauseMs);
  cluster.signal(paused, "SIGCONT");
  await delay(killIntervalMs - restartAfterMs);
}

/** Time from each kill to the first write called after it and acknowledged. */
function recoveryTimesMs(history: readonly KvOperation[], killTimes: readonly number[]): number[] {
  return killTimes.map((killedAt) => {
    const acknowledged = history
      .filter((op) => op.input.op !== "get" && op.return !== null && op.call >= killedAt)
      .map((op) => (op.return as number) - killedAt);
    return acknowledged.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...acknowledged);
  });
}

/** True when a completed `op` set its key to a new value (every put and cas value is unique). */
function changedTheValue(op: KvOperation): boolean {
  if (op.return === null || op.output === null) return false;
  return op.input.op === "put" || op.input.op === "delete" || (op.output.op === "cas" && op.output.ok);
}

/**
 * The history with one final read made stale: it answers the value of a put that another write,
 * called after the put returned, overwrote before the read was called. No order explains it.
 */
function withStaleFinalRead(history: readonly KvOperation[]): KvOperation[] | null {
  for (const key of keys) {
    const ofKey = history.filter((op) => op.input.key === key && op.return !== null);
    const finalRead = ofKey.filter((op) => op.input.op === "get").at(-1);
    if (finalRead === undefined) continue;
    for (const put of ofKey) {
      if (put.input.op !== "put") continue;
      const putReturn = put.return as number;
      const overwritten = ofKey.some(
        (op) => changedTheValue(op) && op.call > putReturn && (op.return as number) < finalRead.call,
      );
      if (!overwritten) continue;
      const stale: KvOutput = { op: "get", value: put.input.value };
      return history.map((op) => (op === finalRead ? { ...op, output: stale } : op));
    }
  }
  return null;
}

describe("linearizable KV on 3 real processes while the primary is killed", { timeout: 50_000 }, () => {
  let cluster: ProcessCluster;
  let history: KvOperation[] = [];

  before(async () => {
    cluster = await ProcessCluster.create(3);
    for (const name of names) cluster.start(name);
    await agreedPrimary(cluster, names, "one agreed primary");
  });
  after(async () => {
    await cluster.killAll();
  });

  it("keeps every operation linearizable and loses no acknowledged write", async (t) => {
    const seed = Number(process.env.LINEARIZABILITY_SEED ?? Date.now() % 1_000_000);
    const workload = new Workload(cluster, seed, { names, keys: () => keys });
    const killTimes: number[] = [];
    try {
      await workload.run(injectFaults(cluster, workload, killTimes));
      await agreedPrimary(cluster, names, "one primary agreed by all three after healing");
      for (const key of keys) {
        const read = await workload.runUntilComplete(0, { op: "get", key }, 20);
        assert.ok(read, `a final linearizable read of ${key} completed`);
      }
    } finally {
      workload.close();
    }
    history = workload.history();
    const checkStartedMs = performance.now();
    const result = checkLinearizability(history, kvModel, { timeBudgetMs: 20_000 });
    const checkMs = Math.round(performance.now() - checkStartedMs);

    const { ok, refused, unknown, reasons } = workload.counters;
    const recoveries = recoveryTimesMs(history, killTimes);
    const sorted = [...recoveries].sort((a, b) => a - b);
    t.diagnostic(`seed ${seed}: ${ok} ok, ${refused} refused (not applied), ${unknown} unknown outcome`);
    t.diagnostic(`not ok, by reason: ${JSON.stringify(Object.fromEntries(reasons))}`);
    t.diagnostic(
      `${killTimes.length} primary kills; kill -> first acknowledged write: p50 ${Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0)} ms, max ${Math.round(sorted.at(-1) ?? 0)} ms`,
    );
    t.diagnostic(
      `linearizability: ${result.result}, ${result.operationsChecked} operations over ${result.partitions} keys, ${result.statesExplored} states, ${checkMs} ms`,
    );
    if (result.result !== "ok") keepEvidence(seed, history, result);

    assert.equal(result.result, "ok", explain(result));
    assert.equal(killTimes.length, killCount);
    assert.ok(recoveries.every(Number.isFinite), "the cluster acknowledged writes again after every kill");
    assert.ok(ok > 200, `the workload made progress (${ok} operations completed)`);
  });

  it("is a test that can fail: a stale final read in the same history is a violation", (t) => {
    assert.ok(history.length > 0, "the history of the previous test");
    const corrupted = withStaleFinalRead(history);
    assert.ok(corrupted, "a put overwritten before a final read exists");
    const result = checkLinearizability(corrupted, kvModel, { timeBudgetMs: 20_000 });
    t.diagnostic(`corrupted history: ${result.result}`);
    assert.equal(result.result, "violation");
  });
});

function explain(result: CheckResult<KvInput, KvOutput>): string {
  if (result.result === "violation") return result.explanation;
  if (result.result === "unknown") return result.reason;
  return "ok";
}

/** Keeps the history of a failed check outside the cluster's directory (which is removed). */
function keepEvidence(
  seed: number,
  history: readonly KvOperation[],
  result: CheckResult<KvInput, KvOutput>,
): void {
  const file = join(tmpdir(), `conclave-linearizability-${seed}-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ seed, result: explain(result), history }, null, 1));
  console.log(`# history kept in ${file}`);
}
