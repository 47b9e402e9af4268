/**
 * The history a linearizability check reads: one record per client operation, with the time it
 * was called and the time its answer arrived (or `null` when the client never learned the
 * outcome), and a recorder that builds such a history from a running workload.
 */
import { ConclaveError } from "../../lib/errors.ts";

/**
 * One client operation as the client saw it.
 *
 * `call` and `return` are readings of one monotonic clock (simulated ticks or milliseconds).
 * `return === null` means the outcome is unknown (timed out, connection lost): the operation may
 * have taken effect at any moment after `call`, or never. Then `output` is `null` as well; for a
 * completed operation `output` is never `null` (a "not found" answer is a value of `O`).
 *
 * @example
 * ```ts
 * const op: Operation<KvInput, KvOutput> = {
 *   clientId: 1, input: { op: "get", key: "a" }, call: 10, return: 14, output: { op: "get", value: "1" },
 * };
 * ```
 */
export interface Operation<I, O> {
  clientId: number;
  input: I;
  call: number;
  return: number | null;
  output: O | null;
}

/** A whole history: operations in any order (the checker sorts by time). */
export type History<I, O> = readonly Operation<I, O>[];

/** True when the client never learned the outcome of `operation`. */
export function isOutcomeUnknown<I, O>(operation: Operation<I, O>): boolean {
  return operation.return === null;
}

/** An operation in flight, as returned by {@link HistoryRecorder.invoke}. Opaque to callers. */
export interface OperationHandle {
  readonly index: number;
}

/** Options of a {@link HistoryRecorder}. */
export interface HistoryRecorderOptions {
  /** The clock: simulated ticks in the simulator, `performance.now` against real processes. */
  now: () => number;
  /** A bound on recorded operations, so that a runaway workload fails loudly (default 1,000,000). */
  operationsMax?: number;
}

const operationsMaxDefault = 1_000_000;

/**
 * Records a history while a workload runs. Call {@link invoke} just before sending a request and
 * {@link complete} (or {@link unknown}) as soon as the answer (or the failure) is known; the
 * recorder stamps both with the injected clock, so the recorded interval always contains the
 * moment the operation took effect.
 *
 * @example
 * ```ts
 * const recorder = new HistoryRecorder<KvInput, KvOutput>({ now: () => performance.now() });
 * const handle = recorder.invoke(1, { op: "put", key: "a", value: "1" });
 * try { await client.put("a", "1"); recorder.complete(handle, { op: "put" }); }
 * catch { recorder.unknown(handle); }
 * const result = checkLinearizability(recorder.history(), kvModel);
 * ```
 */
export class HistoryRecorder<I, O> {
  readonly #now: () => number;
  readonly #operationsMax: number;
  readonly #operations: Operation<I, O>[] = [];
  readonly #settled: boolean[] = [];
  #lastReading = Number.NEGATIVE_INFINITY;
  #pendingCount = 0;

  constructor(options: HistoryRecorderOptions) {
    this.#now = options.now;
    this.#operationsMax = options.operationsMax ?? operationsMaxDefault;
  }

  /** Records the call of an operation now; returns the handle to settle it with. */
  invoke(clientId: number, input: I): OperationHandle {
    if (this.#operations.length >= this.#operationsMax) {
      throw new ConclaveError(
        "CONCLAVE_HISTORY_FULL",
        `The history already holds ${this.#operationsMax} operations; raise operationsMax or run a shorter workload.`,
        { operationsMax: this.#operationsMax },
      );
    }
    const index = this.#operations.length;
    this.#operations.push({ clientId, input, call: this.#read(), return: null, output: null });
    this.#settled.push(false);
    this.#pendingCount++;
    return { index };
  }

  /** Records that the operation returned `output` now. */
  complete(handle: OperationHandle, output: O): void {
    const operation = this.#unsettled(handle);
    operation.return = this.#read();
    operation.output = output;
  }

  /** Records that the outcome of the operation will never be known (timeout, lost connection). */
  unknown(handle: OperationHandle): void {
    this.#unsettled(handle);
  }

  /** Operations not yet settled. */
  get pendingCount(): number {
    return this.#pendingCount;
  }

  /**
   * A copy of the history so far. Operations still in flight appear with an unknown outcome,
   * which is what they are to the checker at this moment.
   */
  history(): Operation<I, O>[] {
    return this.#operations.map((operation) => ({ ...operation }));
  }

  #unsettled(handle: OperationHandle): Operation<I, O> {
    const operation = this.#operations[handle.index];
    if (operation === undefined || this.#settled[handle.index] !== false) {
      throw new ConclaveError(
        "CONCLAVE_HISTORY_INVALID",
        `Operation handle ${handle.index} is unknown or already settled; settle each operation exactly once.`,
        { index: handle.index },
      );
    }
    this.#settled[handle.index] = true;
    this.#pendingCount--;
    return operation;
  }

  #read(): number {
    const reading = this.#now();
    if (!Number.isFinite(reading) || reading < this.#lastReading) {
      throw new ConclaveError(
        "CONCLAVE_HISTORY_INVALID",
        `The history clock went from ${this.#lastReading} to ${reading}; use a monotonic clock such as performance.now or simulated ticks.`,
        { previous: this.#lastReading, reading },
      );
    }
    this.#lastReading = reading;
    return reading;
  }
}
