import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  checkLinearizability,
  type KvInput,
  type KvKeyState,
  type KvOutput,
  kvModel,
} from "../../../src/sim/linearizability/index.ts";
import { applyToMap, type KvOperation, type PlannedStep, runPlannedClients } from "./kv-workload.ts";

// Few keys and values, so that reads, deletes and cas often meet each other's effects.
const key = fc.constantFrom("a", "b", "c");
const value = fc.constantFrom("0", "1", "2");
const kvInput: fc.Arbitrary<KvInput> = fc.oneof(
  fc.record({ op: fc.constant("get" as const), key }),
  fc.record({ op: fc.constant("put" as const), key, value }),
  fc.record({ op: fc.constant("delete" as const), key }),
  fc.record({ op: fc.constant("cas" as const), key, expected: fc.option(value, { nil: null }), value }),
);

const plannedStep: fc.Arbitrary<PlannedStep> = fc.record({
  input: kvInput,
  gapTicks: fc.integer({ min: 0, max: 5 }),
  durationTicks: fc.integer({ min: 0, max: 20 }),
  effectFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  fate: fc.constantFrom(
    "completed",
    "completed",
    "completed",
    "completed",
    "unknown-applied",
    "unknown-lost",
  ),
});
const clients = fc.array(fc.array(plannedStep, { maxLength: 25 }), { minLength: 1, maxLength: 6 });

function explain(history: KvOperation[]): string {
  const result = checkLinearizability(history, kvModel);
  return result.result === "violation" ? result.explanation : JSON.stringify(result);
}

describe("properties of the key-value checker", () => {
  it("a history run sequentially against a real Map is linearizable", () => {
    fc.assert(
      fc.property(fc.array(kvInput, { maxLength: 200 }), (inputs) => {
        const store = new Map<string, string>();
        let now = 0;
        const history: KvOperation[] = inputs.map((input) => {
          const call = now++;
          return { clientId: 1, input, call, return: now++, output: applyToMap(store, input) };
        });
        assert.equal(checkLinearizability(history, kvModel).result, "ok", explain(history));
      }),
      { numRuns: 200 },
    );
  });

  it("concurrent operations applied atomically inside their intervals are linearizable", () => {
    fc.assert(
      fc.property(clients, (plans) => {
        const history = runPlannedClients(plans);
        const result = checkLinearizability(history, kvModel);
        assert.equal(result.result, "ok", explain(history));
      }),
      { numRuns: 300 },
    );
  });

  it("corrupting one read to a value never written makes such a history a violation", () => {
    fc.assert(
      fc.property(clients, fc.nat(), (plans, pick) => {
        const history = runPlannedClients(plans);
        const reads = history.filter((o) => o.input.op === "get" && o.return !== null);
        fc.pre(reads.length > 0);
        const victim = reads[pick % reads.length] as KvOperation;
        victim.output = { op: "get", value: "never-written" };
        const result = checkLinearizability(history, kvModel);
        assert.equal(result.result, "violation");
        assert.ok(result.result === "violation");
        assert.match(result.explanation, new RegExp(`key "${victim.input.key}": not linearizable`));
        // The debugging prefix is itself a legal run of the model, on the victim's key.
        let state: KvKeyState = null;
        for (const operation of result.longestLinearizedPrefix) {
          assert.equal(operation.input.key, victim.input.key);
          const step = kvModel.step(state, operation.input, operation.output);
          assert.ok(step.ok, kvModel.describe(operation.input, operation.output));
          state = step.state;
        }
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * The definition, by brute force: some order of all known operations (and any of the unknown
 * ones) respects real time and the model. Only for a handful of operations.
 */
function linearizableByBruteForce(history: readonly KvOperation[]): boolean {
  const placed = new Set<number>();
  const mustPrecede = (a: KvOperation, b: KvOperation) => a.return !== null && a.return < b.call;
  const extend = (state: KvKeyState): boolean => {
    if (history.every((o, i) => placed.has(i) || o.return === null)) return true;
    return history.some((candidate, i) => {
      if (placed.has(i)) return false;
      if (history.some((o, j) => !placed.has(j) && j !== i && mustPrecede(o, candidate))) return false;
      const step = kvModel.step(state, candidate.input, candidate.output);
      if (!step.ok) return false;
      placed.add(i);
      const found = extend(step.state);
      placed.delete(i);
      return found;
    });
  };
  return extend(null);
}

const randomOutput = (input: KvInput): fc.Arbitrary<KvOutput> => {
  switch (input.op) {
    case "get":
      return fc.record({ op: fc.constant("get" as const), value: fc.option(value, { nil: null }) });
    case "put":
      return fc.constant({ op: "put" as const });
    case "delete":
      return fc.record({ op: fc.constant("delete" as const), existed: fc.boolean() });
    case "cas":
      return fc.record({ op: fc.constant("cas" as const), ok: fc.boolean() });
  }
};

describe("the search agrees with the definition", () => {
  const oneKeyStep = plannedStep.map((step) => ({ ...step, input: { ...step.input, key: "a" } }));
  it("on small one-key histories, some of them with tampered outputs", () => {
    const histories = fc
      .array(fc.array(oneKeyStep, { maxLength: 2 }), { minLength: 1, maxLength: 3 })
      .map(runPlannedClients)
      .chain((history) =>
        fc.tuple(
          ...history.map((operation) =>
            operation.return === null
              ? fc.constant(operation)
              : fc.oneof(
                  { weight: 3, arbitrary: fc.constant(operation) },
                  {
                    weight: 1,
                    arbitrary: randomOutput(operation.input).map((output) => ({ ...operation, output })),
                  },
                ),
          ),
        ),
      );
    let violations = 0;
    fc.assert(
      fc.property(histories, (history) => {
        const expected = linearizableByBruteForce(history) ? "ok" : "violation";
        if (expected === "violation") violations++;
        const { isReadOnly: _withoutShortcut, ...modelWithoutShortcut } = kvModel;
        assert.equal(checkLinearizability(history, kvModel).result, expected, explain(history));
        assert.equal(checkLinearizability(history, modelWithoutShortcut).result, expected);
      }),
      { numRuns: 1000 },
    );
    // The generator must exercise both answers, or the comparison proves little.
    assert.ok(violations > 50, `only ${violations} violations among 1000 histories`);
  });
});
