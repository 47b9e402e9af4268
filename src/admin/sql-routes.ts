/**
 * The SQL routes:
 * - `POST /v1/sql/execute` `{ statements: [{ sql, params? }] }`: one atomic transaction through
 *   the log. The primary rewrites non-deterministic SQL first (`prepareSql`); what cannot be
 *   replicated is refused with 400 naming the construct, before anything is proposed. A statement
 *   that fails when applied rolls the whole transaction back on every member: 422 with
 *   `{ error, code, statementIndex, outcome: "rolled-back" }`. Success: `{ results: [{
 *   rowsChanged, lastInsertRowid }], index, term }`.
 * - `POST /v1/sql/query` `{ sql, params?, consistency?, maxStalenessMs? }`: rows of one read-only
 *   statement, `{ rows, truncated }`, at the asked consistency (read-consistency.ts).
 * Bodies are at most `sqlBodyBytesMax` (4 MiB); values in JSON as json-values.ts describes.
 */
import { z } from "zod";
import type { SqlStatement } from "../ports/database.ts";
import { proposeSql } from "./database-writes.ts";
import { HttpFailure, orHttpFailure } from "./http-failure.ts";
import { rowsToJson, sqlValueFromJson, sqlValueToJson } from "./json-values.ts";
import type { PlainRouteModule } from "./plain-router.ts";
import { ensureReadable, readOptions } from "./read-consistency.ts";
import { readJsonBody } from "./request-body.ts";
import { jsonAnswer } from "./route-request.ts";

/** Largest SQL request body (execute or query). */
export const sqlBodyBytesMax = 4 * 1024 * 1024;

const statementSchema = z.strictObject({ sql: z.string(), params: z.array(z.unknown()).optional() });
const executeSchema = z.strictObject({ statements: z.array(statementSchema).min(1) });
const querySchema = z.strictObject({
  sql: z.string(),
  params: z.array(z.unknown()).optional(),
  consistency: z.string().optional(),
  maxStalenessMs: z.number().int().nonnegative().optional(),
});

/** Parses `value` with `schema`, or a 400 naming the first problem. */
export function parseBody<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue === undefined || issue.path.length === 0 ? "" : `${issue.path.join(".")}: `;
  throw new HttpFailure(
    400,
    "CONCLAVE_BAD_REQUEST",
    `invalid ${what} body: ${path}${issue?.message ?? "invalid"}`,
  );
}

function toStatement(raw: { sql: string; params?: unknown[] | undefined }, index: number): SqlStatement {
  if (raw.params === undefined) return { sql: raw.sql };
  return {
    sql: raw.sql,
    params: raw.params.map((value, at) => sqlValueFromJson(value, `statements.${index}.params.${at}`)),
  };
}

export const registerSqlRoutes: PlainRouteModule = (router, context) => {
  const { database } = context;
  router.add("POST", "/v1/sql/execute", async (request) => {
    const body = parseBody(
      executeSchema,
      await readJsonBody(request, sqlBodyBytesMax, "a SQL request"),
      "execute",
    );
    if (body.statements.length > database.limits.sqlStatementsPerCommandMax) {
      throw new HttpFailure(
        400,
        "CONCLAVE_BAD_REQUEST",
        `more than ${database.limits.sqlStatementsPerCommandMax} statements in one transaction; split it`,
      );
    }
    const statements = body.statements.map(toStatement);
    const prepared = await orHttpFailure(context, () => database.prepareSql(statements));
    const { index, term, results } = await proposeSql(context, prepared, {
      from: request,
      request: statements,
    });
    return jsonAnswer({
      results: results.map((one) => ({
        rowsChanged: one.rowsChanged,
        lastInsertRowid: sqlValueToJson(one.lastInsertRowid),
      })),
      index,
      term,
    });
  });

  router.add("POST", "/v1/sql/query", async (request) => {
    const body = parseBody(
      querySchema,
      await readJsonBody(request, sqlBodyBytesMax, "a SQL request"),
      "query",
    );
    const options = readOptions(body.consistency, body.maxStalenessMs ?? null);
    const params = (body.params ?? []).map((value, at) => sqlValueFromJson(value, `params.${at}`));
    await ensureReadable(context, options, request.trace);
    const { rows, truncated } = await orHttpFailure(context, () => database.query(body.sql, params));
    return jsonAnswer({ rows: rowsToJson(rows), truncated });
  });
};
