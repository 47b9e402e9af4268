/**
 * The forwarding protocol that travels next to Raft messages on the cluster transport: a
 * secondary asks the primary to propose a command (`forward-propose`) or to confirm a read index
 * (`forward-read-index`), and the primary answers once (`forward-result`). Peers are
 * authenticated by the transport, so the checks here guard against bugs and version skew: every
 * field is checked for type and size before anything acts on it, and a message that fails is
 * dropped (and counted), never thrown on.
 *
 * @example
 * ```ts
 * const parsed = parseForwardMessage(value, { dataBytesMax: 8 << 20 });
 * if (parsed === null) dropped++;
 * else if (parsed.type === "forward-propose") serve(parsed);
 * ```
 */
import type { NodeId } from "../raft/types.ts";
import { parseWireSteps, type WireSteps } from "./request-trace.ts";

/** A secondary asks the primary to propose `data` and answer with its result once applied. */
export interface ForwardPropose {
  readonly type: "forward-propose";
  readonly id: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly data: Uint8Array;
  /** The caller's remaining time: the primary gives up (outcome unknown) after it. */
  readonly timeoutMs: number;
  /**
   * The command carries the secondary's wall clock: the primary restamps it with its own before
   * proposing it. Absent means false (and a primary of an earlier build ignores it).
   */
  readonly stampAtPrimary?: true;
  /**
   * The secondary traces the request (request-trace.ts): the primary sends back its total time,
   * and all its steps when serving took at least this many ms. Absent: not traced.
   */
  readonly trace?: number;
}

/** A secondary asks the primary for a read index (ReadIndex on followers, Raft thesis §6.4). */
export interface ForwardReadIndex {
  readonly type: "forward-read-index";
  readonly id: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly timeoutMs: number;
  readonly trace?: number;
}

/** What a forwarded request came to: the applied entry (or read index), or a typed failure. */
export type ForwardOutcome =
  | { readonly ok: true; readonly index: number; readonly term: number; readonly result: unknown }
  | {
      readonly ok: false;
      /** A runtime error code (`CONCLAVE_…`). */
      readonly code: string;
      readonly message: string;
      readonly leader: NodeId | null;
      /** For CONCLAVE_DISK_FULL: whether the write may still be applied. */
      readonly outcome?: "unknown" | "not-applied";
    };

/** The primary's one answer to a forwarded request. */
export interface ForwardResult {
  readonly type: "forward-result";
  readonly id: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly outcome: ForwardOutcome;
  /** The primary's steps, when the request asked for them (a primary of an earlier build sends none). */
  readonly trace?: WireSteps;
}

export type ForwardMessage = ForwardPropose | ForwardReadIndex | ForwardResult;

/** Limits of what an inbound forward message may carry. */
export interface ForwardLimits {
  /** Largest `data` of a forwarded proposal. */
  readonly dataBytesMax: number;
}

/** Longest timeout a forwarded request may ask for (10 minutes). */
export const forwardTimeoutMsMax = 600_000;
/** Longest error message relayed from the primary. */
const failureMessageCharsMax = 2000;
const errorCodePattern = /^CONCLAVE_[A-Z0-9_]{1,60}$/;
const forwardTypes: ReadonlySet<string> = new Set([
  "forward-propose",
  "forward-read-index",
  "forward-result",
]);

/** True when `value` claims to be a forward message (its `type`); whether it is well-formed is `parseForwardMessage`'s job. */
export function hasForwardType(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === "object" &&
    forwardTypes.has((value as { type?: unknown }).type as string)
  );
}

function isRequestId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

function isTimeoutMs(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= forwardTimeoutMsMax;
}

function isTraceMinMs(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= forwardTimeoutMsMax;
}

function isNodeIdOrNull(value: unknown): value is NodeId | null {
  return value === null || (typeof value === "string" && value.length > 0 && value.length <= 256);
}

function parseOutcome(value: unknown): ForwardOutcome | null {
  if (value === null || typeof value !== "object") return null;
  const o = value as Record<string, unknown>;
  if (o.ok === true) {
    if (!Number.isSafeInteger(o.index) || (o.index as number) < 0) return null;
    if (!Number.isSafeInteger(o.term) || (o.term as number) < 0) return null;
    return { ok: true, index: o.index as number, term: o.term as number, result: o.result };
  }
  if (o.ok !== false) return null;
  if (typeof o.code !== "string" || !errorCodePattern.test(o.code)) return null;
  if (typeof o.message !== "string" || !isNodeIdOrNull(o.leader)) return null;
  if (o.outcome !== undefined && o.outcome !== "unknown" && o.outcome !== "not-applied") return null;
  const base = {
    ok: false as const,
    code: o.code,
    message: o.message.slice(0, failureMessageCharsMax),
    leader: o.leader,
  };
  return o.outcome === undefined ? base : { ...base, outcome: o.outcome };
}

/** The checked message, or null when `value` is not a well-formed forward message. */
export function parseForwardMessage(value: unknown, limits: ForwardLimits): ForwardMessage | null {
  if (!hasForwardType(value)) return null;
  const m = value as Record<string, unknown>;
  if (!isRequestId(m.id) || typeof m.from !== "string" || typeof m.to !== "string") return null;
  const envelope = { id: m.id, from: m.from, to: m.to };
  if (m.type !== "forward-result" && m.trace !== undefined && !isTraceMinMs(m.trace)) return null;
  const traced = typeof m.trace === "number" ? { trace: m.trace } : {};
  switch (m.type) {
    case "forward-propose":
      if (!(m.data instanceof Uint8Array) || m.data.byteLength > limits.dataBytesMax) return null;
      if (!isTimeoutMs(m.timeoutMs)) return null;
      if (m.stampAtPrimary !== undefined && m.stampAtPrimary !== true) return null;
      return {
        type: "forward-propose",
        ...envelope,
        data: m.data,
        timeoutMs: m.timeoutMs,
        ...(m.stampAtPrimary === true ? { stampAtPrimary: true as const } : {}),
        ...traced,
      };
    case "forward-read-index":
      if (!isTimeoutMs(m.timeoutMs)) return null;
      return { type: "forward-read-index", ...envelope, timeoutMs: m.timeoutMs, ...traced };
    default: {
      const outcome = parseOutcome(m.outcome);
      if (outcome === null) return null;
      if (m.trace === undefined) return { type: "forward-result", ...envelope, outcome };
      const trace = parseWireSteps(m.trace);
      return trace === null ? null : { type: "forward-result", ...envelope, outcome, trace };
    }
  }
}
