import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseWireSteps, RequestTrace } from "../../src/runtime/request-trace.ts";

/** A clock the test moves by hand. */
function manualNow(): { now: () => number; advance: (ms: number) => void } {
  let ms = 1000;
  return { now: () => ms, advance: (by) => (ms += by) };
}

describe("RequestTrace", () => {
  it("records each step with the time since the trace started, in order", () => {
    const clock = manualNow();
    const trace = new RequestTrace({ now: clock.now });
    clock.advance(0.25);
    trace.mark("body read");
    clock.advance(1.5);
    trace.mark("applied");
    assert.deepEqual(trace.steps(), [
      { step: "body read", atMs: 0.25 },
      { step: "applied", atMs: 1.75 },
    ]);
    assert.equal(trace.elapsedMs(), 1.75);
  });

  it("keeps at most 32 steps", () => {
    const trace = new RequestTrace();
    for (let i = 0; i < 100; i++) trace.mark(`step ${i}`);
    assert.equal(trace.steps().length, 32);
    assert.equal(trace.steps()[31]?.step, "step 31");
  });

  it("sends its steps in whole microseconds with a last `answered` step; only that one when not detailed", () => {
    const clock = manualNow();
    const trace = new RequestTrace({ now: clock.now });
    clock.advance(0.1234567);
    trace.mark("proposed");
    clock.advance(2);
    assert.deepEqual(trace.toWire(true), [
      ["proposed", 123],
      ["answered", 2123],
    ]);
    assert.deepEqual(trace.toWire(false), [["answered", 2123]]);
  });

  it("places a primary's steps between sending and the answer, halving the network time", () => {
    const clock = manualNow();
    const trace = new RequestTrace({ now: clock.now });
    clock.advance(1);
    trace.mark("forwarded");
    // The round trip took 5 ms, 3 of them on the primary: 1 ms each way.
    clock.advance(5);
    trace.addRemote("n1", 1, [
      ["proposed", 500],
      ["answered", 3000],
    ]);
    trace.mark("primary answered");
    assert.deepEqual(trace.steps(), [
      { step: "forwarded", atMs: 1 },
      { step: "proposed", atMs: 2.5, on: "n1" },
      { step: "answered", atMs: 5, on: "n1" },
      { step: "primary answered", atMs: 6 },
    ]);
  });
});

describe("parseWireSteps", () => {
  it("accepts a short list of [name, µs] pairs", () => {
    assert.deepEqual(parseWireSteps([["proposed", 500]]), [["proposed", 500]]);
    assert.deepEqual(parseWireSteps([]), []);
  });

  it("refuses anything else: not a list, too many steps, bad names or times", () => {
    const bad: unknown[] = [
      null,
      "steps",
      { 0: ["a", 1] },
      Array.from({ length: 17 }, () => ["a", 1]),
      [["a"]],
      [["a", 1, 2]],
      [[1, 1]],
      [["", 1]],
      [["x".repeat(41), 1]],
      [["a", -1]],
      [["a", Number.NaN]],
      [["a", Number.POSITIVE_INFINITY]],
      [["a", "1"]],
      [["a", 86_400_000_001]],
      [["a", 0.5]],
    ];
    for (const value of bad) assert.equal(parseWireSteps(value), null, JSON.stringify(value));
  });
});
