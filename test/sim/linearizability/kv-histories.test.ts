import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkLinearizability, kvModel } from "../../../src/sim/linearizability/index.ts";
import { type KvOperation, kvOperation as op } from "./kv-workload.ts";

const check = (history: KvOperation[]) => checkLinearizability(history, kvModel);

function assertOk(history: KvOperation[]): void {
  const result = check(history);
  assert.equal(
    result.result,
    "ok",
    result.result === "violation" ? result.explanation : JSON.stringify(result),
  );
  assert.equal(
    result.operationsChecked,
    history.filter((o) => o.input.op !== "get" || o.return !== null).length,
  );
}

function assertViolationOnKey(history: KvOperation[], key: string) {
  const result = check(history);
  assert.equal(result.result, "violation");
  assert.ok(result.result === "violation");
  assert.match(result.explanation, new RegExp(`key "${key}": not linearizable`));
  return result;
}

describe("known-good key-value histories are linearizable", () => {
  it("a sequential history through every operation", () => {
    assertOk([
      op(1, 0, 1, { op: "get", key: "a" }, { op: "get", value: null }),
      op(1, 2, 3, { op: "put", key: "a", value: "1" }, { op: "put" }),
      op(2, 4, 5, { op: "get", key: "a" }, { op: "get", value: "1" }),
      op(2, 6, 7, { op: "cas", key: "a", expected: "0", value: "2" }, { op: "cas", ok: false }),
      op(1, 8, 9, { op: "cas", key: "a", expected: "1", value: "2" }, { op: "cas", ok: true }),
      op(1, 10, 11, { op: "delete", key: "a" }, { op: "delete", existed: true }),
      op(2, 12, 13, { op: "delete", key: "a" }, { op: "delete", existed: false }),
      op(2, 14, 15, { op: "cas", key: "a", expected: null, value: "3" }, { op: "cas", ok: true }),
      op(1, 16, 17, { op: "get", key: "a" }, { op: "get", value: "3" }),
    ]);
  });

  for (const seen of ["1", "2"]) {
    it(`two overlapping writes, and a later read that sees ${seen}`, () => {
      assertOk([
        op(1, 0, 10, { op: "put", key: "a", value: "1" }, { op: "put" }),
        op(2, 2, 8, { op: "put", key: "a", value: "2" }, { op: "put" }),
        op(3, 11, 12, { op: "get", key: "a" }, { op: "get", value: seen }),
        op(3, 13, 14, { op: "get", key: "a" }, { op: "get", value: seen }),
      ]);
    });
  }

  it("reads overlapping a write may see the old value, then the new one", () => {
    assertOk([
      op(1, 0, 1, { op: "put", key: "a", value: "old" }, { op: "put" }),
      op(1, 2, 20, { op: "put", key: "a", value: "new" }, { op: "put" }),
      op(2, 3, 4, { op: "get", key: "a" }, { op: "get", value: "old" }),
      op(3, 5, 6, { op: "get", key: "a" }, { op: "get", value: "new" }),
      op(2, 7, 8, { op: "get", key: "a" }, { op: "get", value: "new" }),
    ]);
  });

  it("a write with an unknown outcome that a later read observes", () => {
    assertOk([
      op(1, 0, null, { op: "put", key: "a", value: "1" }, null),
      op(2, 50, 51, { op: "get", key: "a" }, { op: "get", value: "1" }),
    ]);
  });

  it("a write with an unknown outcome that no read observes", () => {
    assertOk([
      op(1, 0, null, { op: "put", key: "a", value: "1" }, null),
      op(2, 5, 6, { op: "get", key: "a" }, { op: "get", value: null }),
      op(2, 50, 51, { op: "get", key: "a" }, { op: "get", value: null }),
    ]);
  });

  it("a cas with an unknown outcome that took effect, seen through a later failed cas", () => {
    assertOk([
      op(1, 0, 1, { op: "put", key: "a", value: "1" }, { op: "put" }),
      op(1, 2, null, { op: "cas", key: "a", expected: "1", value: "2" }, null),
      op(2, 9, 10, { op: "cas", key: "a", expected: "1", value: "3" }, { op: "cas", ok: false }),
      op(2, 11, 12, { op: "get", key: "a" }, { op: "get", value: "2" }),
    ]);
  });

  it("an operation called at the instant another returned may be ordered before it (documented tie rule)", () => {
    assertOk([
      op(1, 0, 5, { op: "put", key: "a", value: "1" }, { op: "put" }),
      op(2, 5, 6, { op: "get", key: "a" }, { op: "get", value: null }),
    ]);
  });
});

describe("known-bad key-value histories are violations that name the key", () => {
  it("a stale read after a completed write", () => {
    const result = assertViolationOnKey(
      [
        op(1, 0, 1, { op: "put", key: "a", value: "1" }, { op: "put" }),
        op(2, 2, 3, { op: "get", key: "a" }, { op: "get", value: null }),
      ],
      "a",
    );
    assert.deepEqual(
      result.longestLinearizedPrefix.map((o) => o.input),
      [{ op: "put", key: "a", value: "1" }],
    );
    assert.match(result.explanation, /get\("a"\) -> null .*impossible in this state/);
  });

  it("two reads that see values in an order contradicting real time", () => {
    assertViolationOnKey(
      [
        op(1, 0, 100, { op: "put", key: "k", value: "1" }, { op: "put" }),
        op(2, 10, 11, { op: "get", key: "k" }, { op: "get", value: "1" }),
        op(3, 20, 21, { op: "get", key: "k" }, { op: "get", value: null }),
      ],
      "k",
    );
  });

  it("a lost write: a later read returns the value before a completed put", () => {
    assertViolationOnKey(
      [
        op(1, 0, 1, { op: "put", key: "a", value: "1" }, { op: "put" }),
        op(1, 2, 3, { op: "put", key: "a", value: "2" }, { op: "put" }),
        op(2, 4, 5, { op: "get", key: "a" }, { op: "get", value: "1" }),
      ],
      "a",
    );
  });

  it("a cas that succeeded twice from the same expected value", () => {
    assertViolationOnKey(
      [
        op(1, 0, 1, { op: "put", key: "a", value: "0" }, { op: "put" }),
        op(1, 2, 9, { op: "cas", key: "a", expected: "0", value: "1" }, { op: "cas", ok: true }),
        op(2, 3, 8, { op: "cas", key: "a", expected: "0", value: "2" }, { op: "cas", ok: true }),
      ],
      "a",
    );
  });

  it("a read of a value that was never written", () => {
    const result = assertViolationOnKey(
      [
        op(1, 0, 1, { op: "put", key: "x", value: "1" }, { op: "put" }),
        op(2, 0, 9, { op: "get", key: "x" }, { op: "get", value: "ghost" }),
      ],
      "x",
    );
    assert.match(result.explanation, /"ghost"/);
  });

  it("a delete that reports a key as found when it was absent", () => {
    assertViolationOnKey([op(1, 0, 1, { op: "delete", key: "d" }, { op: "delete", existed: true })], "d");
  });

  it("an unknown write, once observed, cannot be un-observed", () => {
    assertViolationOnKey(
      [
        op(1, 0, 1, { op: "put", key: "a", value: "0" }, { op: "put" }),
        op(1, 2, null, { op: "put", key: "a", value: "1" }, null),
        op(2, 3, 4, { op: "get", key: "a" }, { op: "get", value: "1" }),
        op(2, 5, 6, { op: "get", key: "a" }, { op: "get", value: "0" }),
      ],
      "a",
    );
  });
});

describe("partitioning per key", () => {
  it("finds a violation on one key behind thousands of fine operations on another", () => {
    const history: KvOperation[] = [];
    for (let i = 0; i < 3000; i++) {
      const t = i * 10;
      history.push(op(1, t, t + 6, { op: "put", key: "busy", value: String(i) }, { op: "put" }));
      history.push(op(2, t + 1, t + 9, { op: "get", key: "busy" }, { op: "get", value: String(i) }));
    }
    history.push(op(3, 100, 101, { op: "put", key: "quiet", value: "v" }, { op: "put" }));
    history.push(op(3, 200, 201, { op: "get", key: "quiet" }, { op: "get", value: null }));
    const result = checkLinearizability(history, kvModel);
    assert.equal(result.result, "violation");
    assert.ok(result.result === "violation");
    assert.equal(result.partitionIndex, 1);
    assert.match(result.explanation, /key "quiet"/);
    assert.equal(result.partitions, 2);
    assert.equal(result.operationsChecked, 6002);
  });

  it("does not let one key's writes explain another key's reads", () => {
    const result = check([
      op(1, 0, 1, { op: "put", key: "a", value: "1" }, { op: "put" }),
      op(2, 2, 3, { op: "get", key: "b" }, { op: "get", value: "1" }),
    ]);
    assert.equal(result.result, "violation");
  });
});
