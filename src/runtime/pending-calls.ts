/**
 * The client calls a runtime is waiting on: proposals (until their entry is applied, or lost)
 * and reads (until confirmed and applied). Each call settles exactly once: by its outcome, its
 * timeout, its caller's signal, or the runtime stopping.
 */
import type { ConclaveError } from "../lib/errors.ts";
import type { Clock, TimerHandle } from "../ports/clock.ts";
import type { Entry } from "../raft/types.ts";
import type { RequestTrace } from "./request-trace.ts";
import { aborted, lost, timedOut } from "./runtime-errors.ts";

/** A call waiting for an answer. */
export class PendingCall<T> {
  #resolve: (value: T) => void;
  #reject: (error: ConclaveError) => void;
  #timer: TimerHandle | null = null;
  #onAbort: (() => void) | null = null;
  #signal: AbortSignal | undefined;
  settled = false;
  /** When the call times out (the clock's ms), once watched: a forwarded call passes what is left on. */
  deadlineMs = Number.POSITIVE_INFINITY;
  /** The caller's trace, which the runtime marks the call's steps on (CallOptions.trace). */
  trace: RequestTrace | null = null;

  constructor(resolve: (value: T) => void, reject: (error: ConclaveError) => void) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** Fails the call after `timeoutMs` or when `signal` aborts. */
  watch(clock: Clock, timeoutMs: number, signal: AbortSignal | undefined): void {
    this.deadlineMs = clock.now() + timeoutMs;
    this.#timer = clock.setTimer(() => this.reject(timedOut(timeoutMs)), timeoutMs);
    if (signal === undefined) return;
    if (signal.aborted) {
      this.reject(aborted());
      return;
    }
    this.#signal = signal;
    this.#onAbort = () => this.reject(aborted());
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  resolve(value: T): void {
    if (this.#settle()) this.#resolve(value);
  }

  reject(error: ConclaveError): void {
    if (this.#settle()) this.#reject(error);
  }

  #settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.#timer?.cancel();
    if (this.#onAbort !== null) this.#signal?.removeEventListener("abort", this.#onAbort);
    return true;
  }
}

/** What a proposer gets once its entry is applied. */
export interface ProposalOutcome {
  readonly index: number;
  readonly term: number;
  /** The state machine's result for the entry (`undefined` for a membership change). */
  readonly result: unknown;
}

/** Proposals in the log, by index, until the entry at that index is applied. */
export class ProposalTable {
  readonly #byIndex = new Map<number, { term: number; call: PendingCall<ProposalOutcome> }>();

  get size(): number {
    return this.#byIndex.size;
  }

  /** True when a call waits on the entry at `index`. */
  has(index: number): boolean {
    return this.#byIndex.has(index);
  }

  /**
   * `call` waits for the entry at `index` of `term`: proposed here (step "proposed"), or a write
   * this member forwarded whose index the primary's durable notice named ("primary durable").
   */
  add(index: number, term: number, call: PendingCall<ProposalOutcome>, step = "proposed"): void {
    // Our log now holds a new entry at `index`: an older proposal there was replaced.
    const previous = this.#byIndex.get(index);
    if (previous !== undefined) previous.call.reject(lost(index, previous.term));
    this.#byIndex.set(index, { term, call });
    call.trace?.mark(step);
  }

  /** Marks `step` on the traces of the proposals among `entries` (a Ready's writes or commits). */
  markEntries(entries: readonly Entry[], step: string): void {
    if (this.#byIndex.size === 0) return; // a follower's Readys: nothing proposed here
    for (const entry of entries) this.#byIndex.get(entry.index)?.call.trace?.mark(step);
  }

  /** The entry at `index` (of `term`) was applied with `result`. */
  applied(index: number, term: number, result: unknown): void {
    const pending = this.#byIndex.get(index);
    if (pending === undefined) return;
    this.#byIndex.delete(index);
    pending.call.trace?.mark("applied");
    if (pending.term === term) pending.call.resolve({ index, term, result });
    else pending.call.reject(lost(index, pending.term));
  }

  /** Fails every proposal at or below `index` with `error` (a snapshot covered them). */
  rejectThrough(index: number, error: () => ConclaveError): void {
    for (const [pendingIndex, pending] of this.#byIndex) {
      if (pendingIndex > index) continue;
      this.#byIndex.delete(pendingIndex);
      pending.call.reject(error());
    }
  }

  rejectAll(error: () => ConclaveError): void {
    for (const pending of this.#byIndex.values()) pending.call.reject(error());
    this.#byIndex.clear();
  }

  /** Forgets calls that settled otherwise (timeout, abort). */
  prune(): void {
    // Every loop turn: forEach makes no entry array per call (deleting the visited entry is allowed).
    this.#byIndex.forEach((pending, index) => {
      if (pending.call.settled) this.#byIndex.delete(index);
    });
  }
}

/** What a reader gets: the index its read is linearizable at (the state machine has applied it). */
export interface ReadOutcome {
  readonly index: number;
}

/** ReadIndex requests: waiting for the core's confirmation, then for the state machine. */
export class ReadTable {
  readonly #unconfirmed = new Map<number, PendingCall<ReadOutcome>>();
  #confirmed: { index: number; call: PendingCall<ReadOutcome> }[] = [];

  get size(): number {
    return this.#unconfirmed.size + this.#confirmed.length;
  }

  add(id: number, call: PendingCall<ReadOutcome>): void {
    this.#unconfirmed.set(id, call);
  }

  /** A read index the primary confirmed for us (forwarded ReadIndex): waits until applied here. */
  addConfirmed(index: number, call: PendingCall<ReadOutcome>): void {
    this.#confirmed.push({ index, call });
  }

  confirmed(id: number, index: number): void {
    const call = this.#unconfirmed.get(id);
    if (call === undefined) return;
    this.#unconfirmed.delete(id);
    call.trace?.mark("read index confirmed");
    this.#confirmed.push({ index, call });
  }

  failed(id: number, error: ConclaveError): void {
    this.#unconfirmed.get(id)?.reject(error);
    this.#unconfirmed.delete(id);
  }

  /** Serves every confirmed read whose index the state machine has reached. */
  serve(appliedIndex: number): void {
    if (this.#confirmed.length === 0) return;
    const waiting: { index: number; call: PendingCall<ReadOutcome> }[] = [];
    for (const read of this.#confirmed) {
      if (read.index <= appliedIndex) {
        read.call.trace?.mark("caught up");
        read.call.resolve({ index: read.index });
      } else if (!read.call.settled) waiting.push(read);
    }
    this.#confirmed = waiting;
  }

  rejectAll(error: () => ConclaveError): void {
    for (const call of this.#unconfirmed.values()) call.reject(error());
    for (const read of this.#confirmed) read.call.reject(error());
    this.#unconfirmed.clear();
    this.#confirmed = [];
  }

  prune(): void {
    this.#unconfirmed.forEach((call, id) => {
      if (call.settled) this.#unconfirmed.delete(id);
    });
  }
}
