/**
 * The typed failures of the runtime's client calls. Each is a `ConclaveError` whose `code`
 * callers match on; `details.leader` carries the leader hint where one is known.
 */
import { ConclaveError } from "../lib/errors.ts";
import type { RaftRefusal } from "../raft/api-types.ts";
import type { NodeId, SnapshotMeta } from "../raft/types.ts";

/** Codes of {@link RaftRuntime} call failures, and whether the command may still have been applied. */
export const runtimeErrorCodes = {
  /** Not the leader (or no leader known): nothing was proposed. Retry on `details.leader`. */
  notPrimary: "CONCLAVE_NOT_PRIMARY",
  /** Another entry took this proposal's place in the log: it was never and will never be applied. */
  lost: "CONCLAVE_PROPOSAL_LOST",
  /** No answer in time: the command may or may not be applied (outcome unknown). */
  timeout: "CONCLAVE_TIMEOUT",
  /** The node cannot take more work now (queues full, leadership transfer): nothing was proposed. */
  busy: "CONCLAVE_BUSY",
  /** The caller's signal aborted the wait: the command may or may not be applied. */
  aborted: "CONCLAVE_ABORTED",
  /** The node stopped (or failed) before an answer: the command may or may not be applied. */
  stopped: "CONCLAVE_STOPPED",
  /** A snapshot from the leader replaced the log where this proposal was: it may or may not be applied. */
  outcomeUnknown: "CONCLAVE_OUTCOME_UNKNOWN",
  /** The core refused the request as invalid (e.g. a membership change it cannot make). */
  invalid: "CONCLAVE_INVALID_REQUEST",
  /**
   * This node's disk is full. New requests are refused (nothing proposed); a write already
   * staged may or may not be applied (`details.outcome`: "unknown" or "not-applied").
   */
  diskFull: "CONCLAVE_DISK_FULL",
} as const;

export type RuntimeErrorCode = (typeof runtimeErrorCodes)[keyof typeof runtimeErrorCodes];

export function notPrimary(leader: NodeId | null): ConclaveError {
  const hint = leader === null ? "no primary is known right now; retry shortly" : `the primary is ${leader}`;
  return new ConclaveError(runtimeErrorCodes.notPrimary, `This node is not the primary: ${hint}.`, {
    leader,
  });
}

/** Maps a refusal of the core to the runtime's error. */
export function refusalError(reason: RaftRefusal, leader: NodeId | null, message?: string): ConclaveError {
  switch (reason) {
    case "not-leader":
      return notPrimary(leader);
    case "busy":
      return busy("too many uncommitted entries; slow down and retry");
    case "transferring":
      return busy("a leadership transfer is under way; retry on the new primary");
    case "leader-not-ready":
      return busy("the primary has not committed an entry of its term yet; retry shortly");
    case "membership-change-pending":
      return busy("another membership change is still pending; retry once it commits");
    case "invalid":
      return new ConclaveError(runtimeErrorCodes.invalid, `Request refused: ${message ?? "invalid"}.`, {
        leader,
      });
  }
}

export function busy(why: string): ConclaveError {
  return new ConclaveError(runtimeErrorCodes.busy, `The node is busy: ${why}.`);
}

export function lost(index: number, term: number): ConclaveError {
  return new ConclaveError(
    runtimeErrorCodes.lost,
    `The command proposed at index ${index} in term ${term} was replaced by a new primary's log; it was not applied. Retry it.`,
    { index, term },
  );
}

export function timedOut(timeoutMs: number): ConclaveError {
  return new ConclaveError(
    runtimeErrorCodes.timeout,
    `No answer within ${timeoutMs} ms (no quorum?); the outcome is unknown: the command may still be applied.`,
    { timeoutMs },
  );
}

export function aborted(): ConclaveError {
  return new ConclaveError(
    runtimeErrorCodes.aborted,
    "The request was aborted; if it was proposed, it may still be applied.",
  );
}

export function stopped(cause?: unknown): ConclaveError {
  return new ConclaveError(
    runtimeErrorCodes.stopped,
    "The node stopped before answering; the outcome is unknown.",
    {},
    cause === undefined ? undefined : { cause },
  );
}

export function outcomeUnknown(index: number): ConclaveError {
  return new ConclaveError(
    runtimeErrorCodes.outcomeUnknown,
    `A snapshot from the primary replaced the log up to index ${index}, where this command was; the outcome is unknown: read before retrying.`,
    { index },
  );
}

/** The disk is full: `waiting` writes were staged and may still commit once space is freed. */
export function diskFull(cause: ConclaveError, waiting: boolean): ConclaveError {
  const outcome = waiting ? "unknown" : "not-applied";
  const what = waiting
    ? "The write was staged but could not be made durable; it may still be applied once space is freed (outcome unknown)."
    : "The request was not accepted; retry once space is freed, or on another member.";
  return new ConclaveError(runtimeErrorCodes.diskFull, `This node's disk is full: ${cause.message} ${what}`, {
    outcome,
  });
}

/** A primary whose log snapshots cannot compact refuses new writes (nothing proposed). */
export function logFull(reason: string): ConclaveError {
  return new ConclaveError(
    runtimeErrorCodes.diskFull,
    `This node refuses writes: ${reason}. Free disk space (the snapshot is retried by itself), then retry; nothing was written.`,
    { outcome: "not-applied" },
  );
}

/**
 * At start: the log was compacted up to a snapshot mark (the state machine held that state),
 * but the state machine now holds less — its files were replaced or lost. The entries between
 * are gone from this member, so it cannot rebuild them itself.
 */
export function stateMachineBehindMark(mark: SnapshotMeta, holds: number): ConclaveError {
  return new ConclaveError(
    "CONCLAVE_STORAGE_CORRUPT",
    `The log was compacted up to entry ${mark.index}, which the database held then, but the database now holds only entry ${holds} ` +
      "(was it replaced by an older copy, or lost?). Restore this member from the others: wipe its data directory and let it rejoin.",
    { markIndex: mark.index, stateMachineIndex: holds },
  );
}
