/**
 * Step timings of one request, as etcd's request traces: the HTTP layer starts a trace for a
 * data request, the runtime marks the steps of its proposal or read on it (proposed, log write
 * started, log written, committed, applied; or read index confirmed), and a primary serving a
 * forwarded request traces it too and sends its steps back with the answer. A request slower
 * than `log.slow_request_ms` is then logged with every step (src/admin/slow-requests.ts), which
 * says where the time went: waiting for the loop, the disk, the followers, the apply, a hop.
 *
 * Why it is always on: a slow request cannot be traced after the fact, and marking costs a
 * `performance.now()` and an array slot per step: 1.6 µs of CPU for a forwarded write's steps
 * on both members together (a microbenchmark; a put costs the cluster ~700 µs of CPU).
 *
 * @example
 * ```ts
 * const trace = new RequestTrace();
 * await runtime.propose(data, { forward: true, trace });
 * if (trace.elapsedMs() > 1000) logger.warn({ steps: trace.steps() }, "slow request");
 * ```
 */

/** One step: its name, when (ms since the trace started, on this member's clock), and where. */
export interface TraceStep {
  readonly step: string;
  readonly atMs: number;
  /** The member that measured it, for a step of a forwarded request measured on the primary. */
  readonly on?: string;
}

/** Steps as they travel in a forward result: `[name, µs since the primary received the request]`. */
export type WireSteps = readonly (readonly [string, number])[];

/** Most steps a trace keeps (a request has about ten; more is a bug, not worth memory). */
const stepsMax = 32;
/** Most steps a forward result may carry, and the longest step name in it. */
const wireStepsMax = 16;
const stepNameCharsMax = 40;

export interface RequestTraceOptions {
  /** Milliseconds, monotonic (default `performance.now`). */
  readonly now?: () => number;
  /**
   * How slow the request must be for its steps to matter (the slow-request threshold): a primary
   * serving it sends all its steps back only when it took long enough for that, and otherwise
   * only its total, which keeps every forwarded answer small (default 0: always all steps).
   */
  readonly detailAfterMs?: number;
}

export class RequestTrace {
  readonly detailAfterMs: number;
  readonly #startMs: number;
  readonly #steps: TraceStep[] = [];
  readonly #now: () => number;

  constructor(options: RequestTraceOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.detailAfterMs = options.detailAfterMs ?? 0;
    this.#startMs = this.#now();
  }

  /** Records that `step` happened now. */
  mark(step: string): void {
    if (this.#steps.length < stepsMax) this.#steps.push({ step, atMs: this.elapsedMs() });
  }

  /** Milliseconds since the trace started. */
  elapsedMs(): number {
    return this.#now() - this.#startMs;
  }

  /** Every step so far, in the order they were marked. */
  steps(): readonly TraceStep[] {
    return this.#steps;
  }

  /**
   * The steps for a forward result, in whole microseconds, ending with `answered`; only that
   * last step unless `detailed`.
   */
  toWire(detailed: boolean): WireSteps {
    const wire: [string, number][] = detailed
      ? this.#steps.slice(0, wireStepsMax - 1).map(({ step, atMs }) => [step, Math.round(atMs * 1000)])
      : [];
    wire.push(["answered", Math.round(this.elapsedMs() * 1000)]);
    return wire;
  }

  /**
   * Adds the steps `member` measured while serving this request, which this member sent it at
   * `sentAtMs` (ms since this trace started) and got the answer to now. The two clocks are not
   * compared: the remote steps are placed as if the request and the answer took equally long on
   * the network, which is what a round trip can tell.
   */
  addRemote(member: string, sentAtMs: number, remote: WireSteps): void {
    const last = remote[remote.length - 1];
    const remoteTotalMs = last === undefined ? 0 : last[1] / 1000;
    const networkMs = Math.max(0, this.elapsedMs() - sentAtMs - remoteTotalMs);
    const receivedAtMs = sentAtMs + networkMs / 2;
    for (const [step, atMicros] of remote) {
      if (this.#steps.length >= stepsMax) return;
      this.#steps.push({ step, atMs: receivedAtMs + atMicros / 1000, on: member });
    }
  }
}

/** `ms` rounded to the microsecond. */
export function roundMicros(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The checked steps of a forward result, or null when `value` is not a well-formed list. */
export function parseWireSteps(value: unknown): WireSteps | null {
  if (!Array.isArray(value) || value.length > wireStepsMax) return null;
  for (const item of value) {
    if (!Array.isArray(item) || item.length !== 2) return null;
    const [step, atMs] = item as unknown[]; // µs
    if (typeof step !== "string" || step.length === 0 || step.length > stepNameCharsMax) return null;
    if (!Number.isSafeInteger(atMs) || (atMs as number) < 0 || (atMs as number) > 86_400_000_000) return null;
  }
  return value as WireSteps;
}
