/**
 * SQL's clock: the primary's wall clock, wherever a statement is received. A secondary adds the
 * primary's offset its pings measured — only when it is surely real (larger than its round trip
 * and than the noise of clocks kept by NTP) and recent; otherwise its own clock, as before.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  offsetFreshMsMax,
  offsetIgnoredMsMax,
  type PrimaryClockEstimate,
  SqlClock,
} from "../../src/cluster/sql-clock.ts";

const wallMs = 1_800_000_000_000;

function clockWith(estimate: PrimaryClockEstimate | null, monotonicNowMs = 100_000): SqlClock {
  return new SqlClock({
    wallClockMs: () => wallMs,
    monotonicMs: () => monotonicNowMs,
    primary: () => estimate,
  });
}

it("a secondary a minute behind the primary writes the primary's time", () => {
  const clock = clockWith({ offsetMs: 60_000.4, rttMs: 0.6, lastContactAtMs: 99_000 });
  assert.equal(clock.nowMs(), wallMs + 60_000);
  assert.equal(clockWith({ offsetMs: -5_000, rttMs: 2, lastContactAtMs: 99_000 }).nowMs(), wallMs - 5_000);
});

it("the primary itself, a node that knows no primary, or one with no measurement uses its own clock", () => {
  assert.equal(clockWith(null).nowMs(), wallMs);
  assert.equal(clockWith({ offsetMs: null, rttMs: null, lastContactAtMs: 99_000 }).nowMs(), wallMs);
});

it("offsets within the estimate's error or NTP's agreement are left alone: noise never reaches the data", () => {
  assert.equal(
    clockWith({ offsetMs: offsetIgnoredMsMax, rttMs: 1, lastContactAtMs: 99_000 }).nowMs(),
    wallMs,
  );
  // Over a 300 ms round trip (WAN), an estimate of 120 ms may be all asymmetry.
  assert.equal(clockWith({ offsetMs: 120, rttMs: 300, lastContactAtMs: 99_000 }).nowMs(), wallMs);
  assert.equal(clockWith({ offsetMs: 400, rttMs: 300, lastContactAtMs: 99_000 }).nowMs(), wallMs + 400);
});

it("an offset measured too long ago is not used", () => {
  const stale = { offsetMs: 60_000, rttMs: 1, lastContactAtMs: 0 };
  assert.equal(clockWith(stale, offsetFreshMsMax + 1).nowMs(), wallMs);
  assert.equal(clockWith(stale, offsetFreshMsMax - 1).nowMs(), wallMs + 60_000);
});
