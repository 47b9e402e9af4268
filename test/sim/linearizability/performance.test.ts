import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../../src/lib/prng.ts";
import { checkLinearizability, type KvInput, kvModel } from "../../../src/sim/linearizability/index.ts";
import { type Fate, type PlannedStep, runPlannedClients } from "./kv-workload.ts";

/** A seeded workload: `clients` clients running `operationsTotal` operations over `keyCount` keys. */
function seededPlans(
  seed: number,
  clients: number,
  operationsTotal: number,
  keyCount: number,
): PlannedStep[][] {
  const prng = new Prng(seed);
  const keys = Array.from({ length: keyCount }, (_, i) => `key-${i}`);
  const value = () => String(prng.nextInt(1_000_000));
  const input = (): KvInput => {
    const key = prng.pick(keys);
    const roll = prng.nextInt(10);
    if (roll < 4) return { op: "get", key };
    if (roll < 7) return { op: "put", key, value: value() };
    if (roll < 8) return { op: "delete", key };
    return { op: "cas", key, expected: prng.chance(0.5) ? null : value(), value: value() };
  };
  const fate = (): Fate =>
    prng.chance(0.01) ? "unknown-applied" : prng.chance(0.01) ? "unknown-lost" : "completed";
  return Array.from({ length: clients }, () =>
    Array.from({ length: Math.floor(operationsTotal / clients) }, () => ({
      input: input(),
      gapTicks: prng.nextInt(3),
      durationTicks: 1 + prng.nextInt(10),
      effectFraction: prng.nextFloat(),
      fate: fate(),
    })),
  );
}

describe("performance figures (printed, not asserted on time)", () => {
  const workloads = [
    { name: "10,000 ops over 50 keys, concurrency 8", clients: 8, operations: 10_000, keys: 50 },
    { name: "5,000 ops on one key, concurrency 8", clients: 8, operations: 5_000, keys: 1 },
  ];
  for (const workload of workloads) {
    it(workload.name, (t) => {
      const history = runPlannedClients(
        seededPlans(42, workload.clients, workload.operations, workload.keys),
      );
      const startedMs = performance.now();
      const result = checkLinearizability(history, kvModel, { timeBudgetMs: 20_000 });
      const elapsedMs = performance.now() - startedMs;
      const figure =
        `linearizability: ${workload.name}: ${result.result} in ${elapsedMs.toFixed(1)} ms ` +
        `(${result.operationsChecked} operations checked, ${result.partitions} partitions, ` +
        `${result.statesExplored} states explored, ${result.steps} steps)`;
      t.diagnostic(figure);
      console.log(figure);
      assert.equal(result.result, "ok", result.result === "violation" ? result.explanation : figure);
    });
  }
});
