/**
 * The log entry payload of the replicated database: msgpack (msgpackr records mode), checked on
 * both sides; the plain KV put alone has a fixed binary layout (put-layout.ts). Encoding refuses
 * a bad command with a `ConclaveError` (the proposer's mistake); decoding a committed entry never
 * throws: it returns an error the state machine answers with.
 *
 * @example
 * ```ts
 * const data = encodeCommand({ kind: "sql", statements: [{ sql: "INSERT INTO t VALUES (?)", params: [1] }] });
 * decodeCommand(data); // { ok: true, command: { kind: "sql", statements: [...] } }
 * ```
 */
import { Packr } from "msgpackr";
import { z } from "zod";
import { ByteArena } from "../../lib/byte-arena.ts";
import { ConclaveError } from "../../lib/errors.ts";
import { type ClusterCommand, clusterCommandSchema } from "./cluster-commands.ts";
import { decodeFixedLayout, encodePut, isFixedLayout, type PutFields } from "./put-layout.ts";

/** Most statements in one SQL command (one transaction). */
export const sqlStatementsPerCommandMax = 100;
/** Longest SQL text of one statement, in UTF-8 bytes. */
export const sqlTextBytesMax = 64 * 1024;
/** Most bound parameters of one statement. */
export const sqlParamsPerStatementMax = 1000;
/** Largest encoded command (a whole log entry payload). */
export const commandBytesMax = 4 * 1024 * 1024;
/** Longest key, in UTF-8 bytes. */
export const kvKeyBytesMax = 1024;
/** Largest value. */
export const kvValueBytesMax = 1024 * 1024;
/** Most compares, and most operations per branch, in one KV transaction. */
export const kvTxnItemsMax = 100;
/** Longest lease time-to-live: one year. */
export const leaseTtlMsMax = 365 * 24 * 3600 * 1000;

/** A value SQLite can bind: NULL, INTEGER (number or bigint), REAL, TEXT, BLOB. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** One SQL statement with its positional parameters. */
export interface SqlStatement {
  readonly sql: string;
  readonly params?: readonly SqlValue[];
}

/** Statements applied as one atomic transaction. */
export interface SqlCommand {
  readonly kind: "sql";
  readonly statements: readonly SqlStatement[];
}

const utf8Bytes = (text: string): number => Buffer.byteLength(text, "utf8");

const sqlValueSchema = z.union([z.null(), z.number(), z.bigint(), z.string(), z.instanceof(Uint8Array)]);
const sqlStatementSchema = z.object({
  sql: z.string().refine((sql) => utf8Bytes(sql) <= sqlTextBytesMax, {
    message: `the SQL text is longer than sqlTextBytesMax (${sqlTextBytesMax} bytes)`,
  }),
  params: z
    .array(sqlValueSchema)
    .max(sqlParamsPerStatementMax, {
      message: `more parameters than sqlParamsPerStatementMax (${sqlParamsPerStatementMax})`,
    })
    .optional(),
});
const sqlCommandSchema = z.object({
  kind: z.literal("sql"),
  statements: z
    .array(sqlStatementSchema)
    .min(1, { message: "a SQL command needs at least one statement" })
    .max(sqlStatementsPerCommandMax, {
      message: `more statements than sqlStatementsPerCommandMax (${sqlStatementsPerCommandMax})`,
    }),
});

const keySchema = z.string().refine((key) => utf8Bytes(key) >= 1 && utf8Bytes(key) <= kvKeyBytesMax, {
  message: `a key must be 1 to kvKeyBytesMax (${kvKeyBytesMax}) UTF-8 bytes`,
});
const valueSchema = z.instanceof(Uint8Array).refine((value) => value.byteLength <= kvValueBytesMax, {
  message: `a value is larger than kvValueBytesMax (${kvValueBytesMax} bytes)`,
});
const leaseIdSchema = z.number().int().positive();
const nowMsSchema = z.number().int().nonnegative();
const putSchema = z.object({
  op: z.literal("put"),
  key: keySchema,
  value: valueSchema,
  lease: leaseIdSchema.optional(),
});
const deleteSchema = z.object({ op: z.literal("delete"), key: keySchema });
const getSchema = z.object({ op: z.literal("get"), key: keySchema });
const compareSchema = z.union([
  z.object({
    key: keySchema,
    target: z.literal("value"),
    operator: z.enum(["=", "!="]),
    value: valueSchema.nullable(),
  }),
  z.object({
    key: keySchema,
    target: z.enum(["mod_revision", "create_revision", "version"]),
    operator: z.enum(["=", "!=", "<", ">"]),
    value: z.number().int().nonnegative(),
  }),
]);
const txnOpsSchema = z
  .array(z.discriminatedUnion("op", [putSchema, deleteSchema, getSchema]))
  .max(kvTxnItemsMax, { message: `more operations than kvTxnItemsMax (${kvTxnItemsMax})` });

const kvOperationSchema = z.discriminatedUnion("op", [
  putSchema,
  deleteSchema,
  z.object({
    op: z.literal("cas"),
    key: keySchema,
    expect: z.union([
      z.object({ value: valueSchema.nullable() }),
      z.object({ modRevision: z.number().int().nonnegative() }),
    ]),
    value: valueSchema,
    lease: leaseIdSchema.optional(),
  }),
  z.object({
    op: z.literal("txn"),
    compare: z
      .array(compareSchema)
      .max(kvTxnItemsMax, { message: `more compares than kvTxnItemsMax (${kvTxnItemsMax})` }),
    success: txnOpsSchema,
    failure: txnOpsSchema,
  }),
  z.object({
    op: z.literal("lease-grant"),
    ttlMs: z.number().int().min(1).max(leaseTtlMsMax),
    nowMs: nowMsSchema,
  }),
  z.object({ op: z.literal("lease-keepalive"), leaseId: leaseIdSchema, nowMs: nowMsSchema }),
  z.object({ op: z.literal("lease-revoke"), leaseId: leaseIdSchema }),
  z.object({ op: z.literal("lease-expire"), nowMs: nowMsSchema }),
  z.object({ op: z.literal("lease-renew-all"), nowMs: nowMsSchema }),
]);
const kvCommandSchema = z.intersection(z.object({ kind: z.literal("kv") }), kvOperationSchema);

/** A KV operation (see kv-store.ts for what each does). */
export type KvOperation = z.infer<typeof kvOperationSchema>;
/** One compare of a KV transaction. */
export type KvCompare = z.infer<typeof compareSchema>;
/** One operation of a KV transaction branch. */
export type KvTxnOperation = z.infer<typeof txnOpsSchema>[number];
/** A KV command: `{ kind: "kv", op: "put", key, value }` and so on. */
export type KvCommand = { readonly kind: "kv" } & KvOperation;

/** An idempotency key: 1 to 128 visible ASCII characters. */
export const idempotencyKeyPattern = /^[\x21-\x7e]{1,128}$/;
const keyedCommandSchema = z.object({
  kind: z.literal("keyed"),
  key: z.string().regex(idempotencyKeyPattern, "an idempotency key is 1 to 128 visible ASCII characters"),
  /** SHA-256 (hex) of the client's request, so a key reused for another request is caught. */
  requestSha256: z.string().regex(/^[0-9a-f]{64}$/),
  command: z.union([sqlCommandSchema, kvCommandSchema]),
});
/** A SQL or KV command with an idempotency key (see idempotency.ts). */
export interface KeyedCommand {
  readonly kind: "keyed";
  readonly key: string;
  readonly requestSha256: string;
  readonly command: SqlCommand | KvCommand;
}
/** Any command of the replicated database (cluster commands: see cluster-commands.ts). */
export type DatabaseCommand = SqlCommand | KvCommand | ClusterCommand | KeyedCommand;

/** Why a command was refused (encode) or could not be applied (decode). */
export interface CommandProblem {
  readonly code: "CONCLAVE_COMMAND_INVALID" | "CONCLAVE_COMMAND_TOO_LARGE";
  readonly message: string;
}

// Records mode keeps repeated object shapes small; each entry carries its own record
// definitions (no shared structures), so any member decodes any entry on its own.
const packr = new Packr({ useRecords: true, int64AsType: "bigint" });
/** Where encoded commands are copied to: they become log entries, dropped in log order. */
const commandArena = new ByteArena();

function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid command";
  const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  return `${path}${issue.message}`;
}

const commandSchemas: Readonly<Record<string, z.ZodType | undefined>> = {
  sql: sqlCommandSchema,
  kv: kvCommandSchema,
  cluster: clusterCommandSchema,
  keyed: keyedCommandSchema,
};

/**
 * The plain KV put (`{ kind, op, key, value[, lease] }`, nothing else), checked by hand: it is
 * the hottest command, and zod's intersection parse was about 2.5 % of a primary's CPU per put
 * (encode) and 2 % of every member's (decode). Returns the same object zod would (those fields
 * only), or null to let the schemas decide (anything else, including every invalid put).
 */
function plainKvPut(value: unknown): (KvCommand & { op: "put" }) | null {
  if (typeof value !== "object" || value === null) return null;
  const { kind, op, key, value: bytes, lease } = value as Record<string, unknown>;
  if (kind !== "kv" || op !== "put" || typeof key !== "string" || !(bytes instanceof Uint8Array)) return null;
  const fields = Object.keys(value).length;
  if (fields !== (lease === undefined ? 4 : 5)) return null;
  if (lease !== undefined && !(typeof lease === "number" && Number.isSafeInteger(lease) && lease > 0))
    return null;
  if (bytes.byteLength > kvValueBytesMax) return null;
  const keyBytes = utf8Bytes(key);
  if (keyBytes < 1 || keyBytes > kvKeyBytesMax) return null;
  // The schema's type (z.instanceof) says ArrayBuffer-backed; the check is the same instanceof.
  const checked = bytes as Uint8Array<ArrayBuffer>;
  return putCommand(lease === undefined ? { key, value: checked } : { key, value: checked, lease });
}

/** The put command with these fields, the same object the schemas would give. */
function putCommand(put: PutFields): KvCommand & { op: "put" } {
  return put.lease === undefined
    ? { kind: "kv", op: "put", key: put.key, value: put.value }
    : { kind: "kv", op: "put", key: put.key, value: put.value, lease: put.lease };
}

function validate(
  value: unknown,
): { ok: true; command: DatabaseCommand } | { ok: false; problem: CommandProblem } {
  const put = plainKvPut(value);
  if (put !== null) return { ok: true, command: put };
  return validateBySchema(value);
}

/** The schemas alone, without the put fast path (exported for the test that compares the two). */
export function validateBySchema(
  value: unknown,
): { ok: true; command: DatabaseCommand } | { ok: false; problem: CommandProblem } {
  const kind = (value as { kind?: unknown } | null)?.kind;
  const schema =
    typeof kind === "string" && Object.hasOwn(commandSchemas, kind) ? commandSchemas[kind] : undefined;
  if (schema === undefined) {
    return {
      ok: false,
      problem: {
        code: "CONCLAVE_COMMAND_INVALID",
        message: 'kind must be "sql", "kv", "cluster" or "keyed"',
      },
    };
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, command: parsed.data as DatabaseCommand };
  return { ok: false, problem: { code: "CONCLAVE_COMMAND_INVALID", message: describeIssues(parsed.error) } };
}

/** Encodes a command for the log; throws `CONCLAVE_COMMAND_INVALID` / `CONCLAVE_COMMAND_TOO_LARGE`. */
export function encodeCommand(command: DatabaseCommand): Uint8Array {
  const put = plainKvPut(command);
  // The hottest command has a fixed layout of its own (put-layout.ts); its size is within bounds.
  if (put !== null) return encodePut(put, utf8Bytes(put.key), commandArena);
  const checked = validateBySchema(command);
  if (!checked.ok)
    throw new ConclaveError(checked.problem.code, `the command is invalid: ${checked.problem.message}`);
  const parsed = checked.command;
  // A put with fields the schema drops (e.g. one set to undefined): the same fixed layout.
  if (parsed.kind === "kv" && parsed.op === "put")
    return encodePut(parsed, utf8Bytes(parsed.key), commandArena);
  // A copy: msgpackr returns a view into a buffer it shares between calls, and a log entry kept
  // until the next snapshot would keep that whole buffer alive (measured: ~1.5x the command bytes
  // on the primary with 10 KB values). From an arena: a copy of its own cost 2.5 µs (ByteArena).
  const data = commandArena.copy(packr.pack(command));
  if (data.byteLength > commandBytesMax) {
    throw new ConclaveError(
      "CONCLAVE_COMMAND_TOO_LARGE",
      `the command is ${data.byteLength} bytes, more than commandBytesMax (${commandBytesMax}); split it into several commands`,
      { sizeBytes: data.byteLength, limitBytes: commandBytesMax },
    );
  }
  return data;
}

/** Decodes and checks a committed entry; never throws. */
export function decodeCommand(
  data: Uint8Array,
): { ok: true; command: DatabaseCommand } | { ok: false; problem: CommandProblem } {
  if (data.byteLength > commandBytesMax) {
    return {
      ok: false,
      problem: {
        code: "CONCLAVE_COMMAND_TOO_LARGE",
        message: `the entry is ${data.byteLength} bytes, more than commandBytesMax (${commandBytesMax})`,
      },
    };
  }
  if (isFixedLayout(data)) {
    const decoded = decodeFixedLayout(data, kvKeyBytesMax, kvValueBytesMax);
    if (!decoded.ok)
      return { ok: false, problem: { code: "CONCLAVE_COMMAND_INVALID", message: decoded.message } };
    return { ok: true, command: putCommand(decoded.put) };
  }
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (error) {
    const message = `the entry is not valid msgpack (${error instanceof Error ? error.message : String(error)})`;
    return { ok: false, problem: { code: "CONCLAVE_COMMAND_INVALID", message } };
  }
  return validate(value);
}

/**
 * Lease operations whose `nowMs` is the proposer's wall clock (the start of the lease's TTL).
 * The proposing side's list is `carriesWallClock` in src/cluster/embedded-database.ts (the cluster
 * layer may not import adapters): keep the two the same.
 */
const clockStampedLeaseOps: ReadonlySet<string> = new Set(["lease-grant", "lease-keepalive"]);

/**
 * `data` with the wall clock of its lease grant or keep-alive (also under an idempotency key)
 * replaced by `nowMs`: what the primary does to a command a secondary forwarded, so that leases
 * start by the primary's clock, the one that expires them. Any other command, and data that
 * does not decode, comes back as it is (the state machine judges it when it is applied).
 */
export function stampWallClock(data: Uint8Array, nowMs: number): Uint8Array {
  if (isFixedLayout(data)) return data; // a put: no clock in it
  const decoded = decodeCommand(data);
  if (!decoded.ok) return data;
  const { command } = decoded;
  const inner = command.kind === "keyed" ? command.command : command;
  if (inner.kind !== "kv" || !clockStampedLeaseOps.has(inner.op)) return data;
  const stamped = { ...inner, nowMs };
  return encodeCommand(command.kind === "keyed" ? { ...command, command: stamped } : stamped);
}
