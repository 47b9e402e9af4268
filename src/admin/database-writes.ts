/**
 * Proposing a database command from a route: encode (400/413 when invalid), propose through the
 * log — forwarded to the primary from a secondary; 503 when no primary is known, 504 when the
 * outcome is unknown — and hand back the state machine's result with the entry's index and term.
 */

import { createHash } from "node:crypto";
import { carriesWallClock } from "../cluster/embedded-database.ts";
import type {
  DatabaseApplyResult,
  DatabaseCommand,
  KvOperation,
  SqlStatement,
  StatementResult,
} from "../ports/database.ts";
import type { AdminContext } from "./admin-context.ts";
import { HttpFailure, orHttpFailure } from "./http-failure.ts";
import type { RouteRequest } from "./route-request.ts";

/** A committed and applied command. */
export interface AppliedWrite {
  readonly index: number;
  readonly term: number;
  readonly result: DatabaseApplyResult;
}

/**
 * Encodes, proposes and waits for `command` to be applied. On a secondary the command is
 * forwarded to the primary over the cluster transport (src/runtime/forwarding.ts); without a
 * known primary the answer is 503 (not applied).
 */
export async function proposeCommand(
  context: AdminContext,
  command: Exclude<DatabaseCommand, { kind: "keyed" }>,
  idempotency: Idempotency | null = null,
): Promise<AppliedWrite> {
  const key = idempotency === null ? null : idempotencyKeyOf(idempotency.from);
  const keyed: DatabaseCommand =
    key === null || (command.kind !== "sql" && command.kind !== "kv")
      ? command
      : { kind: "keyed", key, requestSha256: requestHash(idempotency?.request ?? command), command };
  const data = await orHttpFailure(context, () => context.database.encodeCommand(keyed));
  // The sync timeout is a cluster setting (conclave settings); without it the node's configured one.
  const timeoutMs = context.database.cluster.settings().syncTimeoutMs;
  // The request a write came from carries its trace (the data routes', src/admin/slow-requests.ts).
  const trace = idempotency?.from.trace;
  const outcome = await orHttpFailure(context, () =>
    context.runtime.propose(data, {
      forward: true,
      ...(trace === undefined ? {} : { trace }),
      ...(carriesWallClock(command) ? { stampAtPrimary: true } : {}),
      ...(timeoutMs === null ? {} : { timeoutMs }),
    }),
  );
  const result = outcome.result as DatabaseApplyResult & { replayed?: boolean };
  if (result.replayed === true && idempotency !== null)
    idempotency.from.setAnswerHeader("Idempotency-Replayed", "true");
  return { index: outcome.index, term: outcome.term, result };
}

/** The request a write came from, for its idempotency key. */
export interface Idempotency {
  readonly from: RouteRequest;
  /** What the client asked for (before the primary rewrote anything); hashed with the key. */
  readonly request?: unknown;
}

/** The `Idempotency-Key` header, or null; 400 when it is not 1–128 visible ASCII characters. */
export function idempotencyKeyOf(request: RouteRequest): string | null {
  const key = request.header("idempotency-key");
  if (key === undefined) return null;
  if (!/^[\x21-\x7e]{1,128}$/.test(key)) {
    throw new HttpFailure(
      400,
      "CONCLAVE_BAD_REQUEST",
      "the Idempotency-Key header must be 1 to 128 visible ASCII characters (a UUID is a good key)",
    );
  }
  return key;
}

/** SHA-256 of a canonical JSON form of the request (bytes as base64, bigints as text). */
function requestHash(request: unknown): string {
  const text = JSON.stringify(request, (_key, value: unknown) =>
    typeof value === "bigint"
      ? `${value}n`
      : value instanceof Uint8Array
        ? Buffer.from(value).toString("base64")
        : value,
  );
  return createHash("sha256").update(text).digest("hex");
}

/** Status of a KV or SQL error result (the command was applied as a no-op everywhere). */
const resultStatusByCode: Readonly<Record<string, number>> = {
  CONCLAVE_LEASE_NOT_FOUND: 404,
  CONCLAVE_LEASE_EXPIRED: 404,
  CONCLAVE_SQL_REFUSED: 400,
  CONCLAVE_COMMAND_INVALID: 400,
  CONCLAVE_COMMAND_TOO_LARGE: 413,
  CONCLAVE_IDEMPOTENCY_KEY_REUSED: 422,
  CONCLAVE_IDEMPOTENCY_RESULT_NOT_KEPT: 409,
};

/** What an error result says about the write, when not "rolled-back". */
const outcomeByCode: Readonly<Record<string, string>> = {
  // This request applied nothing: the key belongs to another, earlier write.
  CONCLAVE_IDEMPOTENCY_KEY_REUSED: "not-applied",
  // A retry of a write that was applied, whose result was too large to keep.
  CONCLAVE_IDEMPOTENCY_RESULT_NOT_KEPT: "applied",
};

/** The failure of an error result: 422 for a failed statement (rolled back on every member). */
export function resultFailure(error: {
  code: string;
  message: string;
  statementIndex?: number;
}): HttpFailure {
  const details: Record<string, unknown> = { outcome: outcomeByCode[error.code] ?? "rolled-back" };
  if (error.statementIndex !== undefined) details.statementIndex = error.statementIndex;
  return new HttpFailure(resultStatusByCode[error.code] ?? 422, error.code, error.message, details);
}

/** A KV command's successful result: its revision and the operation's details. */
export interface KvWrite {
  readonly index: number;
  readonly term: number;
  readonly result: Readonly<Record<string, unknown>> & { readonly revision: number };
}

/** Proposes a KV operation; an error result becomes its HttpFailure. */
export async function proposeKv(
  context: AdminContext,
  operation: KvOperation,
  idempotency: Idempotency | null = null,
): Promise<KvWrite> {
  const { index, term, result } = await proposeCommand(context, { kind: "kv", ...operation }, idempotency);
  if (!result.ok) throw resultFailure(result.error);
  if (!("revision" in result)) throw new Error("a KV command answered without a revision");
  return { index, term, result };
}

/** Proposes one SQL transaction; a failed statement (rolled back everywhere) becomes a 422. */
export async function proposeSql(
  context: AdminContext,
  statements: readonly SqlStatement[],
  idempotency: Idempotency | null = null,
): Promise<{ index: number; term: number; results: readonly StatementResult[] }> {
  const { index, term, result } = await proposeCommand(context, { kind: "sql", statements }, idempotency);
  if (!result.ok) throw resultFailure(result.error);
  if (!("results" in result)) throw new Error("a SQL command answered without results");
  return { index, term, results: result.results as readonly StatementResult[] };
}
