/**
 * The KV routes (values are raw bytes in PUT bodies and GET answers, base64 inside JSON):
 * - `PUT /v1/kv/:key` body = the value (≤ 1 MiB); `?lease=ID` attaches a lease;
 *   `?prevRevision=N` is a compare-and-set on the key's mod revision (0 = the key must not
 *   exist): 412 `CONCLAVE_REVISION_MISMATCH` with the current `modRevision` when it differs.
 * - `GET /v1/kv/:key?consistency=…` → 200 with the raw value and `x-conclave-*` revision
 *   headers (`?format=json` → `{ key, value, createRevision, modRevision, version, lease,
 *   revision }`); 404 when absent.
 * - `DELETE /v1/kv/:key` → `{ revision, deleted }`.
 * - `GET /v1/kv?prefix=…&limit=…&consistency=…` → `{ revision, kvs: [...], more }`.
 * - `POST /v1/kv/txn` `{ compare, success, failure }` → `{ revision, succeeded, results }`.
 * Keys are 1–1024 UTF-8 bytes, percent-encoded in the path (slashes allowed).
 */
import { z } from "zod";
import type { KvCompare, KvTxnOperation } from "../ports/database.ts";
import type { AdminContext } from "./admin-context.ts";
import { proposeKv } from "./database-writes.ts";
import { HttpFailure, orHttpFailure } from "./http-failure.ts";
import { bytesFromBase64, keyValueToJson, txnResultsToJson } from "./json-values.ts";
import type { PlainRequest, PlainRouteModule, PlainRouter } from "./plain-router.ts";
import { ensureReadable, queryReadOptions } from "./read-consistency.ts";
import { integerParam, readJsonBody } from "./request-body.ts";
import { jsonAnswer } from "./route-request.ts";
import { parseBody } from "./sql-routes.ts";

/** Largest `POST /v1/kv/txn` body: a full 4 MiB command with its values in base64. */
export const kvTxnBodyBytesMax = 6 * 1024 * 1024;
const keyPathPrefix = "/v1/kv/";

/** The key of a `/v1/kv/<key>` request: percent-decoded and checked (400 when invalid). */
function keyOf(request: PlainRequest, context: AdminContext): string {
  let key: string;
  try {
    key = decodeURIComponent(request.path.slice(keyPathPrefix.length));
  } catch {
    throw new HttpFailure(400, "CONCLAVE_BAD_REQUEST", "the key is not valid percent-encoding");
  }
  checkKey(key, context, "the key");
  return key;
}

function checkKey(key: string, context: AdminContext, what: string): void {
  const bytes = Buffer.byteLength(key, "utf8");
  const max = context.database.limits.kvKeyBytesMax;
  if (bytes === 0 || bytes > max) {
    throw new HttpFailure(
      400,
      "CONCLAVE_BAD_REQUEST",
      `${what} is ${bytes} bytes; a key is 1 to ${max} UTF-8 bytes`,
    );
  }
}

const keySchema = z.string().min(1);
const txnOperationSchema = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("put"),
    key: keySchema,
    value: z.string(),
    lease: z.number().int().positive().optional(),
  }),
  z.strictObject({ op: z.literal("delete"), key: keySchema }),
  z.strictObject({ op: z.literal("get"), key: keySchema }),
]);
const compareSchema = z.union([
  z.strictObject({
    key: keySchema,
    target: z.literal("value"),
    operator: z.enum(["=", "!="]),
    value: z.string().nullable(),
  }),
  z.strictObject({
    key: keySchema,
    target: z.enum(["mod_revision", "create_revision", "version"]),
    operator: z.enum(["=", "!=", "<", ">"]),
    value: z.number().int().nonnegative(),
  }),
]);
const txnSchema = z.strictObject({
  compare: z.array(compareSchema).default([]),
  success: z.array(txnOperationSchema).default([]),
  failure: z.array(txnOperationSchema).default([]),
});

function toOperation(raw: z.infer<typeof txnOperationSchema>, where: string): KvTxnOperation {
  if (raw.op !== "put") return raw;
  const value = bytesFromBase64(raw.value, `${where}.value`);
  return raw.lease === undefined
    ? { op: "put", key: raw.key, value }
    : { op: "put", key: raw.key, value, lease: raw.lease };
}

function toCompare(raw: z.infer<typeof compareSchema>, where: string): KvCompare {
  if (raw.target !== "value") return raw;
  const value = raw.value === null ? null : bytesFromBase64(raw.value, `${where}.value`);
  return { key: raw.key, target: "value", operator: raw.operator, value };
}

function registerKeyRoutes(router: PlainRouter, context: AdminContext): void {
  const { database } = context;
  router.add("GET", `${keyPathPrefix}*`, async (request) => {
    const key = keyOf(request, context);
    await ensureReadable(context, queryReadOptions(request), request.trace);
    const kv = database.kvGet(key);
    const revision = database.kvRevision();
    if (kv === null) throw new HttpFailure(404, "CONCLAVE_KEY_NOT_FOUND", `no key ${key}`, { revision });
    if (request.query("format") === "json") return jsonAnswer({ ...keyValueToJson(kv), revision });
    return {
      status: 200,
      contentType: "application/octet-stream",
      body: kv.value,
      headers: {
        "x-conclave-revision": String(revision),
        "x-conclave-mod-revision": String(kv.modRevision),
        "x-conclave-create-revision": String(kv.createRevision),
        "x-conclave-version": String(kv.version),
        "x-conclave-lease": String(kv.lease),
      },
    };
  });

  router.add("PUT", `${keyPathPrefix}*`, async (request) => {
    const key = keyOf(request, context);
    const lease = integerParam(request, "lease", null);
    const prevRevision = integerParam(request, "prevRevision", null);
    const value = await request.bodyBytes(database.limits.kvValueBytesMax, "a KV value");
    const leaseField = lease === null || lease === 0 ? {} : { lease };
    const { index, term, result } = await proposeKv(
      context,
      prevRevision === null
        ? { op: "put", key, value, ...leaseField }
        : { op: "cas", key, expect: { modRevision: prevRevision }, value, ...leaseField },
      { from: request },
    );
    if (result.succeeded === false) {
      // Forwarded from a secondary: read the key once this member applied the entry too.
      await orHttpFailure(context, () => context.runtime.waitApplied(index));
      const modRevision = database.kvGet(key)?.modRevision ?? 0;
      throw new HttpFailure(
        412,
        "CONCLAVE_REVISION_MISMATCH",
        `the key's mod revision is ${modRevision}, not ${prevRevision}; nothing was written`,
        { modRevision, revision: result.revision },
      );
    }
    return jsonAnswer({ revision: result.revision, created: result.created ?? null, index, term });
  });

  router.add("DELETE", `${keyPathPrefix}*`, async (request) => {
    const key = keyOf(request, context);
    const { index, term, result } = await proposeKv(context, { op: "delete", key }, { from: request });
    return jsonAnswer({ revision: result.revision, deleted: result.deleted ?? 0, index, term });
  });
}

export const registerKvRoutes: PlainRouteModule = (router, context) => {
  const { database } = context;
  router.add("GET", "/v1/kv", async (request) => {
    const prefix = request.query("prefix") ?? "";
    if (Buffer.byteLength(prefix, "utf8") > database.limits.kvKeyBytesMax)
      checkKey(prefix, context, "the prefix");
    const limitMax = database.limits.kvRangeLimitMax;
    const limit = Math.min(integerParam(request, "limit", limitMax), limitMax);
    await ensureReadable(context, queryReadOptions(request), request.trace);
    const found = database.kvRange(prefix, Math.min(limit + 1, limitMax));
    const kvs = found.slice(0, limit);
    return jsonAnswer({
      revision: database.kvRevision(),
      kvs: kvs.map(keyValueToJson),
      more: found.length > limit,
    });
  });

  router.add("POST", "/v1/kv/txn", async (request) => {
    const body = parseBody(
      txnSchema,
      await readJsonBody(request, kvTxnBodyBytesMax, "a KV transaction"),
      "txn",
    );
    const { index, term, result } = await proposeKv(
      context,
      {
        op: "txn",
        compare: body.compare.map((compare, at) => toCompare(compare, `compare.${at}`)),
        success: body.success.map((operation, at) => toOperation(operation, `success.${at}`)),
        failure: body.failure.map((operation, at) => toOperation(operation, `failure.${at}`)),
      },
      { from: request },
    );
    return jsonAnswer({
      revision: result.revision,
      succeeded: result.succeeded === true,
      results: txnResultsToJson(result.results),
      index,
      term,
    });
  });

  registerKeyRoutes(router, context);
};
