/**
 * The lease clock (src/cluster/lease-clock.ts): on the primary, the wall clock read once per
 * term and advanced by the monotonic clock, so a step of the wall clock mid-term changes
 * nothing until the next term; elsewhere, the wall clock as it is.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { LeaseClock } from "../../src/cluster/lease-clock.ts";

function harness() {
  const state = { wallMs: 1_000_000, monotonicMs: 50, term: null as number | null };
  const clock = new LeaseClock({
    wallClockMs: () => state.wallMs,
    monotonicMs: () => state.monotonicMs,
    leaderTerm: () => state.term,
  });
  const advance = (ms: number): void => {
    state.wallMs += ms;
    state.monotonicMs += ms;
  };
  return { state, clock, advance };
}

it("a step of the primary's wall clock within a term does not move the lease clock", () => {
  const { state, clock, advance } = harness();
  state.term = 3;
  assert.equal(clock.nowMs(), 1_000_000, "the first reading of the term is the wall clock");
  advance(200);
  assert.equal(clock.nowMs(), 1_000_200);
  state.wallMs += 3_600_000; // NTP steps an hour forward
  advance(300);
  assert.equal(clock.nowMs(), 1_000_500, "the step is ignored: only the monotonic time passed");
  state.wallMs -= 7_200_000; // …and two hours back
  advance(500);
  assert.equal(clock.nowMs(), 1_001_000);
  state.monotonicMs += 0.75;
  assert.equal(clock.nowMs(), 1_001_000, "whole milliseconds, as lease commands carry them");
});

it("a new term takes a new reading of the wall clock; a member that is not the primary reads the wall clock", () => {
  const { state, clock, advance } = harness();
  state.term = 3;
  clock.nowMs();
  state.wallMs += 60_000;
  advance(100);
  assert.equal(clock.nowMs(), 1_000_100);
  state.term = null;
  assert.equal(clock.nowMs(), 1_060_100, "not the primary: the wall clock");
  state.term = 4;
  assert.equal(clock.nowMs(), 1_060_100, "a new term: anchored to the wall clock again");
  advance(100);
  assert.equal(clock.nowMs(), 1_060_200);
});
