/**
 * Forwarding to the primary over the cluster transport ("writes go to the primary; a secondary
 * forwards them"). Both sides of the protocol in forward-messages.ts:
 * - as a secondary: a proposal (or ReadIndex) refused as not-leader is sent to the leader this
 *   node knows; the waiting call settles with the leader's answer. A read answered with an index
 *   then waits until this node applied that index (ReadIndex on followers, Raft thesis §6.4).
 * - as the primary: a forwarded request is proposed (or read-indexed) locally, never forwarded
 *   again (so two nodes with stale views cannot bounce a request), and answered once.
 *
 * Honest outcomes: once a proposal was sent, only the leader's answer can say "applied" or "not
 * applied". Losing that leader (this node learns of another leader, or of none) or the caller's
 * timeout leaves the outcome unknown (`CONCLAVE_OUTCOME_UNKNOWN`, `CONCLAVE_TIMEOUT`). A leader
 * that answers not-primary proposed nothing: the request is sent once more towards its hint,
 * then fails with `CONCLAVE_NOT_PRIMARY`. Bounded: outstanding forwards per node (more are
 * refused busy), requests served at once (more are answered busy), forwarded command size.
 *
 * @example
 * ```ts
 * const forwarder = new Forwarder({ id, clock, logger, send, isMember, serve, awaitApplied });
 * forwarder.propose(data, leader, call); // call settles with the leader's answer
 * transport.onMessage((from, m) => hasForwardType(m) && forwarder.receive(from, m));
 * ```
 */
import { ConclaveError, isConclaveError } from "../lib/errors.ts";
import type { Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { SendOptions } from "../ports/transport.ts";
import type { NodeId } from "../raft/types.ts";
import {
  type ForwardMessage,
  type ForwardOutcome,
  type ForwardPropose,
  type ForwardReadIndex,
  forwardTimeoutMsMax,
  parseForwardMessage,
} from "./forward-messages.ts";
import type { PendingCall, ProposalOutcome, ReadOutcome } from "./pending-calls.ts";
import { RequestTrace, type WireSteps } from "./request-trace.ts";
import { busy, notPrimary, runtimeErrorCodes } from "./runtime-errors.ts";

/** Limits of forwarding; every one has a default. */
export interface ForwardingLimits {
  /** Forwarded requests this node waits on at once; more are refused busy (default 1024). */
  readonly outstandingMax?: number;
  /** Forwarded requests this node serves at once as the primary; more are answered busy (default 4096). */
  readonly servingMax?: number;
  /** Largest forwarded command, in bytes (default 8 MiB; the transport's frame limit is 16 MiB). */
  readonly dataBytesMax?: number;
}

export interface ForwarderOptions {
  readonly id: NodeId;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly limits: ForwardingLimits;
  /** Sends on the cluster transport; false = dropped now. */
  readonly send: (to: NodeId, message: ForwardMessage, options?: SendOptions) => boolean;
  /** True when `id` is a current member (voter or learner). */
  readonly isMember: (id: NodeId) => boolean;
  /** The primary's side: propose / read-index locally, without forwarding. */
  readonly serve: {
    /**
     * `stamp`: the proposer asked for the primary's clock (CallOptions.stampAtPrimary); `trace`:
     * the secondary traces the request, so the primary marks its steps here; `origin`: who
     * forwarded it, under which id (the primary's durable notices name it: forward-origins.ts).
     */
    propose(
      data: Uint8Array,
      timeoutMs: number,
      stamp: boolean,
      trace: RequestTrace | null,
      origin: { readonly from: NodeId; readonly id: number },
    ): Promise<ProposalOutcome>;
    readIndex(timeoutMs: number, trace: RequestTrace | null): Promise<ReadOutcome>;
  };
  /** Settles `call` once this node applied `index` (a forwarded read index). */
  readonly awaitApplied: (index: number, call: PendingCall<ReadOutcome>) => void;
}

/** Counters since start. */
export interface ForwardingStats {
  /** Forward messages dropped as malformed, unexpected or from a non-member. */
  readonly malformedDropped: number;
  /** Requests this node forwarded (attempts, retries included; reads sharing one read index count once). */
  readonly forwarded: number;
  /** Forwarded requests this node served as the primary. */
  readonly served: number;
  /** Forwarded requests waiting for an answer now, and reads waiting to share the next read index. */
  readonly outstanding: number;
  /** Forwarded requests being served now. */
  readonly serving: number;
}

type Outbound =
  | {
      readonly kind: "propose";
      target: NodeId;
      attempt: number;
      /** When the last attempt was sent, on the call's trace (ms since it started). */
      sentAtMs?: number;
      readonly data: Uint8Array;
      readonly stampAtPrimary: boolean;
      readonly call: PendingCall<ProposalOutcome>;
    }
  | {
      readonly kind: "read";
      target: NodeId;
      attempt: number;
      /** The reads sharing this request (those that waited while the one before it was out). */
      readers: Reader[];
    };

/** A read waiting on a forwarded read index, and when that request was sent (on its trace). */
interface Reader {
  readonly call: PendingCall<ReadOutcome>;
  sentAtMs?: number;
}

/** Attempts per forwarded request: the first, and one more towards a not-primary answer's hint. */
const attemptsMax = 2;

export class Forwarder {
  readonly #options: ForwarderOptions;
  readonly #outbound = new Map<number, Outbound>();
  /**
   * Reads that arrived while a read-index request to that primary was out: they share the next
   * one, sent when it returns (etcd's followers batch ReadIndex the same way). Any read index the
   * primary gives after a read arrived serves it; one per read cost the primary a forward to
   * decode, a pending call and an answer each.
   */
  readonly #readsWaiting = new Map<NodeId, Reader[]>();
  /** Read-index requests out, per primary (no entry: none). */
  readonly #readRequestsOut = new Map<NodeId, number>();
  /** Reads in #readsWaiting, counted against `outstandingMax` with the requests out. */
  #readsWaitingCount = 0;
  #nextId = 1;

  /** Read-index requests out, over every primary (the sum of #readRequestsOut). */
  #readRequestsOutCount = 0;

  /**
   * Writes this member forwarded and is still waiting on (what group commit counts: reads put
   * nothing in the log, and holding a secondary's Ready would only delay the heartbeat answers
   * a read index waits for).
   */
  get writesOutstanding(): number {
    return this.#outbound.size - this.#readRequestsOutCount;
  }

  #serving = 0;
  #malformedDropped = 0;
  #forwarded = 0;
  #served = 0;

  constructor(options: ForwarderOptions) {
    this.#options = options;
  }

  stats(): ForwardingStats {
    return {
      malformedDropped: this.#malformedDropped,
      forwarded: this.#forwarded,
      served: this.#served,
      outstanding: this.#outstanding(),
      serving: this.#serving,
    };
  }

  /**
   * Forwards a proposal this node refused as not-leader to `leader`; `call` settles with the
   * answer. `stampAtPrimary`: the primary restamps the command with its clock.
   */
  propose(
    data: Uint8Array,
    leader: NodeId,
    call: PendingCall<ProposalOutcome>,
    stampAtPrimary = false,
  ): void {
    const dataBytesMax = this.#options.limits.dataBytesMax ?? 8 * 1024 * 1024;
    if (data.byteLength > dataBytesMax) {
      call.reject(
        new ConclaveError(
          runtimeErrorCodes.invalid,
          `The command is ${data.byteLength} bytes; at most ${dataBytesMax} bytes can be forwarded to the primary.`,
          { leader },
        ),
      );
      return;
    }
    this.#start({ kind: "propose", target: leader, attempt: 1, data, stampAtPrimary, call });
  }

  /**
   * Asks `leader` for a read index; `call` settles once this node applied it. With a read-index
   * request to `leader` out already, the read waits to share the next one.
   */
  readIndex(leader: NodeId, call: PendingCall<ReadOutcome>): void {
    if (!this.#readRequestsOut.has(leader)) {
      this.#start({ kind: "read", target: leader, attempt: 1, readers: [{ call }] });
      return;
    }
    if (this.#atBound()) {
      call.reject(busy("too many requests are being forwarded to the primary"));
      return;
    }
    const waiting = this.#readsWaiting.get(leader);
    if (waiting === undefined) this.#readsWaiting.set(leader, [{ call }]);
    else waiting.push({ call });
    this.#readsWaitingCount++;
  }

  #start(request: Outbound): void {
    if (this.#atBound()) {
      this.#rejectRequest(request, busy("too many requests are being forwarded to the primary"));
      return;
    }
    this.#sendRequest(this.#nextId++, request);
  }

  #outstanding(): number {
    return this.#outbound.size + this.#readsWaitingCount;
  }

  /**
   * True when no more requests may be forwarded, counting only unsettled ones. Requests that
   * settled otherwise (timeout, abort) are pruned here only when the count reaches the bound, and
   * at every loop turn (RaftRuntime): pruning at every forward walked every outstanding request
   * each time (quadratic near the bound of 1,024) and made an entry array per request.
   */
  #atBound(): boolean {
    if (this.#outstanding() < this.#outstandingMax()) return false;
    this.prune();
    return this.#outstanding() >= this.#outstandingMax();
  }

  #outstandingMax(): number {
    return this.#options.limits.outstandingMax ?? 1024;
  }

  #sendRequest(id: number, request: Outbound): void {
    // A shared read index is useful to the primary until the last of its reads gives up, and the
    // primary's steps matter only if a request can still become slow because of them. (No
    // arrays for a proposal: this runs for every forwarded write.)
    let deadlineMs = Number.NEGATIVE_INFINITY;
    let traceMin = Number.POSITIVE_INFINITY;
    const consider = (call: { readonly deadlineMs: number; readonly trace: RequestTrace | null }): void => {
      deadlineMs = Math.max(deadlineMs, call.deadlineMs);
      if (call.trace !== null) traceMin = Math.min(traceMin, traceMinMs(call.trace));
    };
    if (request.kind === "read") for (const { call } of request.readers) consider(call);
    else consider(request.call);
    const remainingMs = deadlineMs - this.#options.clock.now();
    const timeoutMs = Math.max(1, Math.min(forwardTimeoutMsMax, Math.floor(remainingMs)));
    const envelope = {
      id,
      from: this.#options.id,
      to: request.target,
      timeoutMs,
      ...(traceMin === Number.POSITIVE_INFINITY ? {} : { trace: traceMin }),
    };
    const message: ForwardPropose | ForwardReadIndex =
      request.kind === "propose"
        ? {
            type: "forward-propose",
            ...envelope,
            data: request.data,
            ...(request.stampAtPrimary ? { stampAtPrimary: true as const } : {}),
          }
        : { type: "forward-read-index", ...envelope };
    this.#forwarded++;
    // One forward per client request: under load those of one event-loop turn share a frame (and
    // the primary's read), instead of 1.13 messages per frame at 64 writes in flight. Alone (none
    // outstanding) it leaves as the code yields: nothing would share its frame.
    const coalesce = this.#outbound.size > 0;
    if (!this.#options.send(request.target, message, { coalesce })) {
      // Not queued: the primary never saw it, so nothing was proposed.
      this.#rejectRequest(request, busy(`the request could not be sent to the primary ${request.target}`));
      if (request.kind === "read") this.#sendWaitingReads(request.target);
      return;
    }
    for (const sender of request.kind === "read" ? request.readers : [request]) {
      const trace = sender.call.trace;
      if (trace !== null) {
        trace.mark("forwarded");
        sender.sentAtMs = trace.elapsedMs();
      }
    }
    if (request.kind === "read") this.#countReadRequest(request.target, +1);
    this.#outbound.set(id, request);
  }

  /**
   * The call of proposal `id` this member forwarded to `primary`, still waiting, or null: the
   * primary's durable notice named its log index, so it may settle here on applying that entry
   * (RaftRuntime). It stays outstanding: the primary's answer, or losing it, settles it as before.
   */
  proposalSentTo(id: number, primary: NodeId): PendingCall<ProposalOutcome> | null {
    const request = this.#outbound.get(id);
    if (request === undefined || request.kind !== "propose" || request.target !== primary) return null;
    return request.call.settled ? null : request.call;
  }

  /** Handles an inbound forward message (already known to carry a forward `type`). Never throws. */
  receive(from: NodeId, value: unknown): void {
    const dataBytesMax = this.#options.limits.dataBytesMax ?? 8 * 1024 * 1024;
    const message = parseForwardMessage(value, { dataBytesMax });
    if (message === null || message.from !== from || message.to !== this.#options.id) {
      this.#drop(from, "malformed forward message");
      return;
    }
    if (!this.#options.isMember(from)) {
      this.#drop(from, "forward message from a node that is not a member");
      return;
    }
    if (message.type === "forward-result") this.#settle(message.id, from, message.outcome, message.trace);
    else this.#serve(message);
  }

  #drop(from: NodeId, why: string): void {
    this.#malformedDropped++;
    this.#options.logger.warn({ peer: from }, `dropped a ${why}`);
  }

  /** The primary's side: run the request here and answer once. */
  #serve(request: ForwardPropose | ForwardReadIndex): void {
    if (this.#serving >= (this.#options.limits.servingMax ?? 4096)) {
      this.#answer(request, failureOf(busy("the primary is serving too many forwarded requests")));
      return;
    }
    this.#serving++;
    const { serve } = this.#options;
    const trace = request.trace === undefined ? null : new RequestTrace();
    trace?.mark("received");
    const work: Promise<ForwardOutcome> =
      request.type === "forward-propose"
        ? serve
            .propose(request.data, request.timeoutMs, request.stampAtPrimary === true, trace, {
              from: request.from,
              id: request.id,
            })
            .then(({ index, term, result }) => ({ ok: true, index, term, result }))
        : serve
            .readIndex(request.timeoutMs, trace)
            .then(({ index }) => ({ ok: true, index, term: 0, result: null }));
    void work
      .catch((error: unknown) => failureOf(error))
      .then((outcome) => {
        this.#serving--;
        this.#served++;
        this.#answer(request, outcome, trace);
      });
  }

  #answer(
    request: ForwardPropose | ForwardReadIndex,
    outcome: ForwardOutcome,
    trace: RequestTrace | null = null,
  ): void {
    const reply = (answer: ForwardOutcome): boolean =>
      this.#options.send(request.from, {
        type: "forward-result",
        id: request.id,
        from: this.#options.id,
        to: request.from,
        outcome: answer,
        ...(trace === null ? {} : { trace: trace.toWire(trace.elapsedMs() >= (request.trace ?? 0)) }),
      });
    if (reply(outcome) || !outcome.ok) return;
    // Applied, but the result could not be queued (too large to encode?): say so, in a small message.
    reply({
      ok: false,
      code: runtimeErrorCodes.outcomeUnknown,
      message: `The primary applied the command at index ${outcome.index} but could not send its result back; read before retrying.`,
      leader: this.#options.id,
    });
  }

  /** The secondary's side: the answer to request `id`. */
  #settle(id: number, from: NodeId, outcome: ForwardOutcome, steps: WireSteps | undefined): void {
    const request = this.#outbound.get(id);
    if (request === undefined) return; // settled otherwise (timeout, abort, leader lost)
    if (request.target !== from) {
      this.#drop(from, "forward result from a node the request was not sent to");
      return;
    }
    this.#outbound.delete(id);
    // Answered here already (applied here after the primary's durable notice, or timed out).
    if (request.kind === "propose" && request.call.settled) return;
    if (request.kind === "read") this.#countReadRequest(from, -1);
    for (const sender of request.kind === "read" ? request.readers : [request]) {
      const trace = sender.call.trace;
      if (trace !== null && steps !== undefined) trace.addRemote(from, sender.sentAtMs ?? 0, steps);
      trace?.mark("primary answered");
    }
    if (outcome.ok) {
      if (request.kind === "propose") request.call.resolve(outcome);
      else {
        // Reads that came while this one was out need a read index asked after they came.
        this.#sendWaitingReads(from);
        for (const { call } of request.readers) this.#options.awaitApplied(outcome.index, call);
      }
      return;
    }
    if (outcome.code === runtimeErrorCodes.notPrimary) {
      const hint = outcome.leader;
      if (request.attempt < attemptsMax && hint !== null && hint !== from && hint !== this.#options.id) {
        // Nothing was proposed: safe to ask the primary it names, once. Reads waiting for the
        // node that refused go along: this request is sent after they came.
        request.target = hint;
        request.attempt++;
        if (request.kind === "read") request.readers.push(...this.#takeWaitingReads(from));
        this.#sendRequest(this.#nextId++, request);
        return;
      }
      this.#rejectRequest(request, notPrimary(hint));
      if (request.kind === "read") this.#sendWaitingReads(from);
      return;
    }
    const details: Record<string, unknown> = { leader: outcome.leader, forwardedTo: from };
    if (outcome.outcome !== undefined) details.outcome = outcome.outcome;
    this.#rejectRequest(request, new ConclaveError(outcome.code, outcome.message, details));
    if (request.kind === "read") this.#sendWaitingReads(from);
  }

  /**
   * This node now knows `leader` as the primary (or none): requests waiting on another node may
   * never be answered. A proposal's outcome is unknown; a read changed nothing (not-primary).
   */
  leaderChanged(leader: NodeId | null): void {
    for (const target of [...this.#readsWaiting.keys()]) {
      if (target === leader) continue;
      for (const { call } of this.#takeWaitingReads(target)) call.reject(notPrimary(leader));
    }
    for (const [id, request] of this.#outbound) {
      if (request.target === leader) continue;
      this.#outbound.delete(id);
      if (request.kind === "read") {
        this.#countReadRequest(request.target, -1);
        this.#rejectRequest(request, notPrimary(leader));
      } else request.call.reject(leaderLost(request.target, leader));
    }
  }

  rejectAll(error: () => ConclaveError): void {
    for (const target of [...this.#readsWaiting.keys()])
      for (const { call } of this.#takeWaitingReads(target)) call.reject(error());
    for (const request of this.#outbound.values()) for (const call of callsOf(request)) call.reject(error());
    this.#outbound.clear();
    this.#readRequestsOut.clear();
    this.#readRequestsOutCount = 0;
  }

  /** Forgets requests and waiting reads that settled otherwise (timeout, abort). */
  prune(): void {
    for (const [target, waiting] of this.#readsWaiting) {
      if (!waiting.some(({ call }) => call.settled)) continue;
      const unsettled = waiting.filter(({ call }) => !call.settled);
      this.#readsWaitingCount -= waiting.length - unsettled.length;
      if (unsettled.length === 0) this.#readsWaiting.delete(target);
      else this.#readsWaiting.set(target, unsettled);
    }
    // Called at every loop turn: no allocation per outstanding request (forEach makes no entry
    // arrays; deleting the visited entry is allowed). A settled reader left in a request that is
    // still out is skipped when the answer comes (a settled call ignores it).
    this.#outbound.forEach((request, id) => {
      if (request.kind === "propose") {
        if (request.call.settled) this.#outbound.delete(id);
        return;
      }
      if (!request.readers.every(({ call }) => call.settled)) return;
      this.#outbound.delete(id);
      this.#countReadRequest(request.target, -1);
      this.#sendWaitingReads(request.target);
    });
  }

  #rejectRequest(request: Outbound, error: ConclaveError): void {
    for (const call of callsOf(request)) call.reject(error);
  }

  #countReadRequest(target: NodeId, change: 1 | -1): void {
    this.#readRequestsOutCount += change;
    const out = (this.#readRequestsOut.get(target) ?? 0) + change;
    if (out > 0) this.#readRequestsOut.set(target, out);
    else this.#readRequestsOut.delete(target);
  }

  /** Removes and returns the reads waiting for `target` (none settled). */
  #takeWaitingReads(target: NodeId): Reader[] {
    const waiting = this.#readsWaiting.get(target) ?? [];
    this.#readsWaiting.delete(target);
    this.#readsWaitingCount -= waiting.length;
    return waiting.filter(({ call }) => !call.settled);
  }

  /** Sends the reads waiting for `target` as one request, once no read request to it is out. */
  #sendWaitingReads(target: NodeId): void {
    if (this.#readRequestsOut.has(target)) return;
    const readers = this.#takeWaitingReads(target);
    if (readers.length > 0) this.#sendRequest(this.#nextId++, { kind: "read", target, attempt: 1, readers });
  }
}

/** The calls waiting on a forwarded request. */
function callsOf(request: Outbound): PendingCall<ProposalOutcome>[] | PendingCall<ReadOutcome>[] {
  return request.kind === "read" ? request.readers.map(({ call }) => call) : [request.call];
}

/** When the primary should send all its steps: once serving took long enough to make the request slow. */
function traceMinMs(trace: RequestTrace): number {
  return Math.min(forwardTimeoutMsMax, Math.max(0, Math.floor(trace.detailAfterMs - trace.elapsedMs())));
}

function leaderLost(target: NodeId, leader: NodeId | null): ConclaveError {
  const now = leader === null ? "no primary is known now" : `the primary is now ${leader}`;
  return new ConclaveError(
    runtimeErrorCodes.outcomeUnknown,
    `The command was forwarded to the primary ${target}, which was lost before answering (${now}); the outcome is unknown: read before retrying.`,
    { leader, forwardedTo: target },
  );
}

/** A thrown error as a forward failure (a runtime error keeps its code and leader hint). */
function failureOf(error: unknown): ForwardOutcome {
  if (!isConclaveError(error)) {
    return {
      ok: false,
      code: runtimeErrorCodes.outcomeUnknown,
      message: `The primary failed while serving the request (${String(error)}); the outcome is unknown.`,
      leader: null,
    };
  }
  const leader = typeof error.details.leader === "string" ? error.details.leader : null;
  const outcome = error.details.outcome;
  return outcome === "unknown" || outcome === "not-applied"
    ? { ok: false, code: error.code, message: error.message, leader, outcome }
    : { ok: false, code: error.code, message: error.message, leader };
}
