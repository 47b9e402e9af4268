/**
 * How recently this node knew a primary, for `consistency=none` reads with `maxStalenessMs`.
 *
 * The runtime does not expose when the last message from the leader arrived, so this samples the
 * node's status every `sampleIntervalMs`: the node is "in contact" while it is the primary, or a
 * follower that knows a primary and has applied everything it knows to be committed. A follower
 * cut off from the primary keeps its leader until its election timeout fires (then it becomes a
 * candidate and forgets it), so the age this reports is the time since the last good sample,
 * with a resolution of about one election timeout plus one sample interval — documented in
 * DESIGN.md as the bound `maxStalenessMs` really gives.
 *
 * @example
 * ```ts
 * const contact = new LeaderContact(() => runtime.status(), () => performance.now());
 * contact.start();
 * contact.ageMs(); // 0 while in contact, else ms since the last sample in contact
 * ```
 */

/** The status fields the sample needs. */
export interface ContactStatus {
  readonly role: string;
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
}

/** Default sampling period. */
export const sampleIntervalMsDefault = 50;

export class LeaderContact {
  readonly #status: () => ContactStatus | null;
  readonly #nowMs: () => number;
  readonly #sampleIntervalMs: number;
  #lastContactMs: number | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    status: () => ContactStatus | null,
    nowMs: () => number,
    sampleIntervalMs = sampleIntervalMsDefault,
  ) {
    this.#status = status;
    this.#nowMs = nowMs;
    this.#sampleIntervalMs = sampleIntervalMs;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.#sampleIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Records the current status (also called on each read, so a read sees the latest). */
  sample(): void {
    const status = this.#status();
    if (status === null) return;
    const inContact =
      status.role === "leader" ||
      (status.role === "follower" && status.leader !== null && status.applied >= status.commit);
    if (inContact) this.#lastContactMs = this.#nowMs();
  }

  /** Milliseconds since this node was last in contact with a primary; Infinity if never. */
  ageMs(): number {
    this.sample();
    return this.#lastContactMs === null
      ? Number.POSITIVE_INFINITY
      : Math.max(0, this.#nowMs() - this.#lastContactMs);
  }
}
