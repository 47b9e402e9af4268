/**
 * Every second each node pings every other member over the cluster channel. A ping and its pong
 * carry wall-clock times, so each node knows each member's clock offset from its own (NTP's
 * estimate: offset = ((t2 − t1) + (t3 − t4)) / 2, good to about half the round trip), when it
 * last heard from it, and what the member says of itself (state, applied and commit index).
 * `conclave status` shows them; members must keep their clocks in sync (leases carry the
 * primary's clock), so an offset above {@link clockOffsetWarnMs} is flagged.
 *
 * @example
 * ```ts
 * const pings = new MemberPings({ channel, clock, self: () => ({ state: "SECONDARY", applied, commit }), targets });
 * pings.start();
 * pings.contact("n2"); // { lastContactAtMs, offsetMs: 3, rttMs: 0.4, reported: { state: "PRIMARY", … } }
 * ```
 */
import type { ClusterMessage } from "./cluster-channel.ts";

/** Interval between pings to each member. */
export const pingIntervalMs = 1000;
/** Clock offsets above this are flagged in status. */
export const clockOffsetWarnMs = 500;
/** A member not heard from for this long is shown DOWN. */
export const contactLostMs = 3000;

/** Longest problem a member reports of itself (longer ones are cut). */
export const problemCharsMax = 300;

/** What a member says of itself in each ping and pong. */
export interface SelfReport {
  readonly state: string;
  readonly applied: number;
  readonly commit: number;
  /**
   * What keeps it from working normally, in plain words, or null (its disk is full, its
   * snapshots fail). Members of an earlier build send none: null.
   */
  readonly problem: string | null;
}

/** What this node knows of a member from its pings. */
export interface MemberContact {
  /**
   * This node's monotonic clock (`monotonicMs`) when it last heard from the member: a step of
   * the wall clock must not make every member look lost (or fresh).
   */
  readonly lastContactAtMs: number;
  /** Member's clock minus ours (ms), from the last pong; null before one arrived. */
  readonly offsetMs: number | null;
  readonly rttMs: number | null;
  readonly reported: SelfReport;
}

export interface MemberPingsOptions {
  readonly send: (to: string, message: ClusterMessage) => boolean;
  /** For the offsets: the ping times are wall-clock readings. */
  readonly wallClockMs: () => number;
  /** For how long ago a member was heard from. */
  readonly monotonicMs: () => number;
  readonly self: () => SelfReport;
  /** The members to ping (never this node). */
  readonly targets: () => readonly string[];
}

/** Pings members and keeps what their answers say. See the module comment. */
export class MemberPings {
  readonly #options: MemberPingsOptions;
  readonly #contacts = new Map<string, MemberContact>();
  #timer: NodeJS.Timeout | null = null;

  constructor(options: MemberPingsOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.pingAll(), pingIntervalMs);
    this.#timer.unref();
    this.pingAll();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Sends one ping to every target (also called by the timer). */
  pingAll(): void {
    const targets = new Set(this.#options.targets());
    for (const id of this.#contacts.keys()) if (!targets.has(id)) this.#contacts.delete(id);
    for (const id of targets) {
      this.#options.send(id, {
        type: "ping",
        sentAtMs: this.#options.wallClockMs(),
        ...this.#options.self(),
      });
    }
  }

  /** Handles `ping` and `pong` messages; returns false for other types. */
  receive(from: string, message: ClusterMessage): boolean {
    const now = this.#options.wallClockMs();
    const report = readReport(message);
    if (message.type === "ping" && typeof message.sentAtMs === "number" && report !== null) {
      this.#record(from, report, null);
      this.#options.send(from, {
        type: "pong",
        pingSentAtMs: message.sentAtMs,
        receivedAtMs: now,
        sentAtMs: this.#options.wallClockMs(),
        ...this.#options.self(),
      });
      return true;
    }
    if (
      message.type === "pong" &&
      report !== null &&
      areNumbers(message.pingSentAtMs, message.receivedAtMs, message.sentAtMs)
    ) {
      const t1 = message.pingSentAtMs as number;
      const t2 = message.receivedAtMs as number;
      const t3 = message.sentAtMs as number;
      this.#record(from, report, {
        offsetMs: (t2 - t1 + (t3 - now)) / 2,
        rttMs: Math.max(0, now - t1 - (t3 - t2)),
      });
      return true;
    }
    return message.type === "ping" || message.type === "pong";
  }

  #record(from: string, reported: SelfReport, timing: { offsetMs: number; rttMs: number } | null): void {
    if (!this.#options.targets().includes(from)) return; // guests and ex-members are not tracked
    const previous = this.#contacts.get(from);
    this.#contacts.set(from, {
      lastContactAtMs: this.#options.monotonicMs(),
      offsetMs: timing?.offsetMs ?? previous?.offsetMs ?? null,
      rttMs: timing?.rttMs ?? previous?.rttMs ?? null,
      reported,
    });
  }

  /** What this node knows of `id`, or null when it never heard from it. */
  contact(id: string): MemberContact | null {
    return this.#contacts.get(id) ?? null;
  }

  /** True when `id` answered within {@link contactLostMs}. */
  reachable(id: string): boolean {
    const contact = this.#contacts.get(id);
    return contact !== undefined && this.#options.monotonicMs() - contact.lastContactAtMs < contactLostMs;
  }
}

function areNumbers(...values: unknown[]): boolean {
  return values.every((value) => typeof value === "number" && Number.isFinite(value));
}

function readReport(message: ClusterMessage): SelfReport | null {
  const { state, applied, commit, problem } = message;
  if (typeof state !== "string" || state.length > 32 || !areNumbers(applied, commit)) return null;
  return {
    state,
    applied: applied as number,
    commit: commit as number,
    problem: typeof problem === "string" ? problem.slice(0, problemCharsMax) : null,
  };
}
