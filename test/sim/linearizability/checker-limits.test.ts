import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isConclaveError } from "../../../src/lib/errors.ts";
import {
  checkLinearizability,
  growOnlySetModel,
  HistoryRecorder,
  kvModel,
  type Operation,
  type SetInput,
  type SetOutput,
} from "../../../src/sim/linearizability/index.ts";
import { type KvOperation, kvOperation as op } from "./kv-workload.ts";

/** Many writes in flight at once and a read of a value none of them wrote: the search must try every subset. */
function pathologicalHistory(writers: number): KvOperation[] {
  const history: KvOperation[] = [];
  for (let i = 0; i < writers; i++) {
    history.push(op(i, 0, 100, { op: "put", key: "p", value: String(i) }, { op: "put" }));
  }
  history.push(op(writers, 1, 99, { op: "get", key: "p" }, { op: "get", value: "nobody" }));
  return history;
}

function sequentialHistory(length: number): KvOperation[] {
  return Array.from({ length }, (_, i) =>
    op(1, i * 2, i * 2 + 1, { op: "put", key: "s", value: String(i) }, { op: "put" }),
  );
}

describe("budget: an exhausted search is unknown, never ok", () => {
  it("a pathological history with a tiny stepsMax", () => {
    const result = checkLinearizability(pathologicalHistory(20), kvModel, { stepsMax: 500 });
    assert.equal(result.result, "unknown");
    assert.ok(result.result === "unknown");
    assert.match(result.reason, /stepsMax/);
    assert.match(result.reason, /key "p"/);
    assert.equal(result.steps, 500);
  });

  it("a linearizable history that needs more steps than allowed", () => {
    assert.equal(checkLinearizability(sequentialHistory(100), kvModel, { stepsMax: 10 }).result, "unknown");
    assert.equal(checkLinearizability(sequentialHistory(100), kvModel, { stepsMax: 200 }).result, "ok");
  });

  it("a time budget read from an injected clock", () => {
    let now = 0;
    const clock = () => {
      now += 1000;
      return now;
    };
    const result = checkLinearizability(pathologicalHistory(20), kvModel, { timeBudgetMs: 5000, now: clock });
    assert.equal(result.result, "unknown");
    assert.ok(result.result === "unknown");
    assert.match(result.reason, /timeBudgetMs/);
  });

  it("a memo cache bound", () => {
    const result = checkLinearizability(pathologicalHistory(20), kvModel, { cacheBytesMax: 10_000 });
    assert.ok(result.result === "unknown");
    assert.match(result.reason, /cacheBytesMax/);
  });

  it("with enough budget the same pathological shape is decided", () => {
    const result = checkLinearizability(pathologicalHistory(10), kvModel);
    assert.equal(result.result, "violation");
    // Memoization keeps this to subsets of writers times last-writer states, not 10! orders.
    assert.ok(result.statesExplored <= 2 ** 10 * 11, `explored ${result.statesExplored}`);
  });
});

describe("history validation", () => {
  const bad: Array<[string, KvOperation]> = [
    ["a return before its call", op(1, 5, 4, { op: "put", key: "a", value: "1" }, { op: "put" })],
    [
      "an infinite call time",
      op(1, Number.POSITIVE_INFINITY, null, { op: "put", key: "a", value: "1" }, null),
    ],
    [
      "a return time without an output",
      { clientId: 1, input: { op: "put", key: "a", value: "1" }, call: 1, return: 2, output: null },
    ],
    ["an output whose kind differs from the input", op(1, 1, 2, { op: "get", key: "a" }, { op: "put" })],
  ];
  for (const [what, operation] of bad) {
    it(`rejects ${what} with CONCLAVE_HISTORY_INVALID`, () => {
      assert.throws(
        () => checkLinearizability([operation], kvModel),
        (error) => isConclaveError(error, "CONCLAVE_HISTORY_INVALID"),
      );
    });
  }
});

describe("the grow-only set model", () => {
  type SetOperation = Operation<SetInput, SetOutput>;
  const add = (clientId: number, call: number, ret: number | null, value: string): SetOperation => ({
    clientId,
    input: { op: "add", value },
    call,
    return: ret,
    output: ret === null ? null : { op: "add" },
  });
  const read = (clientId: number, call: number, ret: number, values: string[]): SetOperation => ({
    clientId,
    input: { op: "read" },
    call,
    return: ret,
    output: { op: "read", values },
  });

  it("accepts reads that see concurrent adds in a consistent order", () => {
    const result = checkLinearizability(
      [
        add(1, 0, 10, "x"),
        add(2, 0, 10, "y"),
        add(3, 0, null, "z"),
        read(4, 1, 2, ["y"]),
        read(4, 3, 4, ["x", "y"]),
        read(5, 11, 12, ["y", "x"]),
      ],
      growOnlySetModel,
    );
    assert.equal(result.result, "ok");
  });

  it("rejects a read that forgets an element an earlier read saw", () => {
    const result = checkLinearizability(
      [add(1, 0, 10, "x"), add(2, 0, 10, "y"), read(4, 1, 2, ["x", "y"]), read(5, 3, 4, ["x"])],
      growOnlySetModel,
    );
    assert.ok(result.result === "violation");
    assert.match(result.explanation, /the set: not linearizable/);
  });

  it("rejects a read of an element never added, and a read listing one twice", () => {
    for (const values of [
      ["x", "w"],
      ["x", "x"],
    ]) {
      const result = checkLinearizability([add(1, 0, 1, "x"), read(2, 2, 3, values)], growOnlySetModel);
      assert.equal(result.result, "violation", JSON.stringify(values));
    }
  });
});

describe("HistoryRecorder", () => {
  function recorderWithClock() {
    let ticks = 0;
    const clock = { advance: (by: number) => (ticks += by) };
    const recorder = new HistoryRecorder<SetInput, SetOutput>({ now: () => ticks, operationsMax: 3 });
    return { recorder, clock };
  }

  it("stamps calls and returns with the injected clock and reports unsettled operations as unknown", () => {
    const { recorder, clock } = recorderWithClock();
    const first = recorder.invoke(1, { op: "add", value: "a" });
    clock.advance(5);
    const second = recorder.invoke(2, { op: "read" });
    clock.advance(2);
    recorder.complete(first, { op: "add" });
    recorder.unknown(second);
    const third = recorder.invoke(3, { op: "read" });
    assert.equal(recorder.pendingCount, 1);
    assert.deepEqual(recorder.history(), [
      { clientId: 1, input: { op: "add", value: "a" }, call: 0, return: 7, output: { op: "add" } },
      { clientId: 2, input: { op: "read" }, call: 5, return: null, output: null },
      { clientId: 3, input: { op: "read" }, call: 7, return: null, output: null },
    ]);
    recorder.complete(third, { op: "read", values: ["a"] });
    assert.equal(checkLinearizability(recorder.history(), growOnlySetModel).result, "ok");
  });

  it("refuses to settle an operation twice, a clock going backwards, and more than operationsMax", () => {
    const { recorder, clock } = recorderWithClock();
    const handle = recorder.invoke(1, { op: "read" });
    recorder.unknown(handle);
    assert.throws(
      () => recorder.complete(handle, { op: "read", values: [] }),
      (error) => isConclaveError(error, "CONCLAVE_HISTORY_INVALID"),
    );
    clock.advance(-1);
    assert.throws(
      () => recorder.invoke(1, { op: "read" }),
      (error) => isConclaveError(error, "CONCLAVE_HISTORY_INVALID"),
    );
    clock.advance(1);
    recorder.invoke(1, { op: "read" });
    recorder.invoke(1, { op: "read" });
    assert.throws(
      () => recorder.invoke(1, { op: "read" }),
      (error) => isConclaveError(error, "CONCLAVE_HISTORY_FULL"),
    );
  });
});
