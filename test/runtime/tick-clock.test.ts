/** Elapsed monotonic time becomes ticks: nothing is lost to late timers, long pauses are bounded. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TickClock } from "../../src/runtime/tick-clock.ts";

describe("TickClock", () => {
  it("counts ticks from elapsed time, not from how often it is asked", () => {
    const ticks = new TickClock(1000, 50, 100);
    assert.equal(ticks.take(1049), 0);
    assert.equal(ticks.take(1050), 1);
    assert.equal(ticks.take(1050), 0);
    assert.equal(ticks.take(1260), 4, "a late timer still gets every tick that elapsed");
    assert.equal(ticks.take(1299), 0);
    assert.equal(ticks.take(1300), 1);
  });

  it("delivers at most catchUpTicksMax ticks after a long pause and stays aligned afterwards", () => {
    const ticks = new TickClock(0, 50, 40);
    assert.equal(ticks.take(60_000), 40);
    assert.equal(ticks.take(60_049), 0);
    assert.equal(ticks.take(60_050), 1);
  });

  it("asks to be woken at the next tick boundary, never with a zero delay", () => {
    const ticks = new TickClock(0, 50, 40);
    assert.equal(ticks.delayToNextTickMs(0), 50);
    assert.equal(ticks.delayToNextTickMs(120), 30);
    assert.equal(ticks.delayToNextTickMs(150), 50);
  });

  it("gives the delay to a point some ticks after the last one counted, or to the next boundary once past", () => {
    const ticks = new TickClock(0, 50, 40);
    assert.equal(ticks.take(120), 2); // counted through 100
    assert.equal(ticks.delayToTicksAfterCountedMs(120, 10), 600 - 120, "tick 12 is at 600 ms");
    assert.equal(ticks.delayToTicksAfterCountedMs(130, 1), 20, "tick 3 is at 150 ms");
    assert.equal(ticks.delayToTicksAfterCountedMs(170, 1), 30, "past: the next boundary (200 ms)");
  });
});
