/**
 * Every error answer has one JSON shape: `{ error: "<message>", code: "CONCLAVE_…", …details }`.
 * `HttpFailure` carries a status and that body; `runtimeFailure` maps the runtime's typed errors
 * (and the database's) to HTTP, stating for every write whether it may have been applied
 * (`outcome`: "not-applied" or "unknown") so that clients know when a retry is safe.
 */
import { type ConclaveError, isConclaveError } from "../lib/errors.ts";
import type { AdminContext } from "./admin-context.ts";

/** An HTTP error answer: status and JSON body. */
export class HttpFailure extends Error {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.body = { error: message, code, ...details };
  }
}

/** Status per runtime or database error code; `outcome` says whether a write may have been applied. */
const statusByCode: Readonly<Record<string, { status: number; outcome: "not-applied" | "unknown" }>> = {
  CONCLAVE_BUSY: { status: 503, outcome: "not-applied" },
  CONCLAVE_PROPOSAL_LOST: { status: 503, outcome: "not-applied" },
  CONCLAVE_INVALID_REQUEST: { status: 400, outcome: "not-applied" },
  CONCLAVE_STOPPED: { status: 503, outcome: "unknown" },
  CONCLAVE_ABORTED: { status: 503, outcome: "unknown" },
  CONCLAVE_TIMEOUT: { status: 504, outcome: "unknown" },
  CONCLAVE_OUTCOME_UNKNOWN: { status: 504, outcome: "unknown" },
  CONCLAVE_COMMAND_INVALID: { status: 400, outcome: "not-applied" },
  CONCLAVE_COMMAND_TOO_LARGE: { status: 413, outcome: "not-applied" },
  CONCLAVE_SQL_REFUSED: { status: 400, outcome: "not-applied" },
  CONCLAVE_QUERY_REFUSED: { status: 400, outcome: "not-applied" },
  CONCLAVE_QUERY_FAILED: { status: 400, outcome: "not-applied" },
  CONCLAVE_WATCH_LIMIT: { status: 503, outcome: "not-applied" },
};

/** A not-primary answer: 421 naming the primary (Raft id, `name@host`, HTTP address), 503 while none is known. */
export function notPrimaryFailure(
  context: AdminContext,
  leaderHint: string | null,
  message: string,
): HttpFailure {
  const leader = leaderHint ?? (context.node.status().leader as string | null) ?? null;
  const leaderUrl =
    leader === null
      ? null
      : (context.database.cluster.members().find((row) => row.raftId === leader)?.httpUrl ?? null);
  return new HttpFailure(leader === null ? 503 : 421, "CONCLAVE_NOT_PRIMARY", message, {
    leader,
    leaderNode: context.node.memberName(leader),
    leaderUrl,
    outcome: "not-applied",
  });
}

/** Maps a thrown error to an HttpFailure; anything not a ConclaveError is re-thrown (a 500). */
export function runtimeFailure(context: AdminContext, error: unknown): HttpFailure {
  if (error instanceof HttpFailure) return error;
  if (!isConclaveError(error)) throw error;
  if (error.code === "CONCLAVE_NOT_PRIMARY") {
    return notPrimaryFailure(
      context,
      (error.details.leader as string | null | undefined) ?? null,
      error.message,
    );
  }
  if (error.code === "CONCLAVE_DISK_FULL") {
    return new HttpFailure(507, error.code, error.message, { outcome: error.details.outcome ?? "unknown" });
  }
  const known = statusByCode[error.code];
  if (known === undefined) throw error;
  return new HttpFailure(known.status, error.code, describe(error, known.outcome), {
    outcome: known.outcome,
    ...pickDetails(error),
  });
}

function describe(error: ConclaveError, outcome: "not-applied" | "unknown"): string {
  if (outcome !== "unknown" || /outcome is unknown|may still be applied/.test(error.message))
    return error.message;
  return `${error.message} The outcome is unknown: the write may or may not be applied.`;
}

function pickDetails(error: ConclaveError): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  for (const name of ["statementIndex", "construct", "limitBytes"]) {
    if (error.details[name] !== undefined) details[name] = error.details[name];
  }
  return details;
}

/** Calls `run`, turning runtime and database errors into HttpFailures. */
export async function orHttpFailure<T>(context: AdminContext, run: () => Promise<T> | T): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw runtimeFailure(context, error);
  }
}

/**
 * The status and JSON body answering a route's error: an HttpFailure's own; anything else is
 * logged (with the path) and answered 500 "internal error", never with a stack trace.
 */
export function failureBody(
  context: AdminContext,
  error: unknown,
  path: string,
): { readonly status: number; readonly body: Readonly<Record<string, unknown>> } {
  if (error instanceof HttpFailure) return { status: error.status, body: error.body };
  context.logger.warn({ error: String(error), path }, "HTTP request failed");
  return { status: 500, body: { error: "internal error", code: "CONCLAVE_INTERNAL" } };
}
