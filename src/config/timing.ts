/**
 * Timing profiles: the concrete Raft timing behind `cluster.timing = "lan" | "wan"`.
 *
 * The consensus core counts time in ticks; the runtime calls `tick()` every `tickIntervalMs`.
 * A leader sends a heartbeat every `heartbeatTicks`; a follower that hears nothing for a random
 * number of ticks in [`electionTimeoutTicksMin`, `electionTimeoutTicksMax`] starts an election.
 * The random spread keeps two followers from timing out together and splitting the vote.
 *
 * Why these numbers:
 * - `lan` (one data center, round trips under ~1 ms): heartbeat 50 ms, election timeout
 *   400–600 ms (about 500 ms). A follower tolerates 7 lost heartbeats or a GC pause of ~350 ms
 *   before it suspects the primary, and a crashed primary is replaced in under 1 s (at most
 *   600 ms to notice, plus a pre-vote and a vote round of a few ms each).
 * - `wan` (members in different data centers, round trips up to ~150 ms): heartbeat 250 ms,
 *   election timeout 2,000–3,000 ms (about 2.5 s). The same ratio as `lan` (8–12 heartbeats),
 *   so a few slow round trips across data centers do not start needless elections; failover
 *   takes under ~3.5 s.
 *
 * The election timeout must stay well above a round trip and the heartbeat well below the
 * election timeout (Raft §5.6: broadcastTime ≪ electionTimeout ≪ MTBF).
 */

/** The two timing profiles: `lan` within one data center, `wan` across data centers. */
export type TimingProfileName = "lan" | "wan";

/** Concrete timing for the consensus core and the runtime that ticks it. */
export interface TimingProfile {
  readonly name: TimingProfileName;
  /** How often the runtime calls the core's `tick()`. */
  readonly tickIntervalMs: number;
  /** A leader sends heartbeats every this many ticks. */
  readonly heartbeatTicks: number;
  /** Shortest election timeout, in ticks (inclusive). */
  readonly electionTimeoutTicksMin: number;
  /** Longest election timeout, in ticks (inclusive); each timeout is drawn in [min, max]. */
  readonly electionTimeoutTicksMax: number;
}

const profiles: Readonly<Record<TimingProfileName, TimingProfile>> = {
  lan: {
    name: "lan",
    tickIntervalMs: 50,
    heartbeatTicks: 1,
    electionTimeoutTicksMin: 8,
    electionTimeoutTicksMax: 12,
  },
  wan: {
    name: "wan",
    tickIntervalMs: 250,
    heartbeatTicks: 1,
    electionTimeoutTicksMin: 8,
    electionTimeoutTicksMax: 12,
  },
};

/**
 * The concrete timing of a profile.
 *
 * @example
 * ```ts
 * const timing = timingProfile(config.cluster.timing);
 * setInterval(() => node.tick(), timing.tickIntervalMs);
 * ```
 */
export function timingProfile(name: TimingProfileName): TimingProfile {
  return profiles[name];
}

/** Heartbeat interval and election timeout range of a profile, in milliseconds (for status and docs). */
export function timingProfileMs(name: TimingProfileName): {
  heartbeatMs: number;
  electionTimeoutMsMin: number;
  electionTimeoutMsMax: number;
} {
  const profile = profiles[name];
  return {
    heartbeatMs: profile.heartbeatTicks * profile.tickIntervalMs,
    electionTimeoutMsMin: profile.electionTimeoutTicksMin * profile.tickIntervalMs,
    electionTimeoutMsMax: profile.electionTimeoutTicksMax * profile.tickIntervalMs,
  };
}
