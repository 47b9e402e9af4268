/**
 * Makes SQL deterministic before it enters the log (on the primary), the way rqlite does: the
 * non-deterministic parts are evaluated once, by the primary, and written into the statement as
 * literals, so every member applies the same text. What cannot be made deterministic, or must
 * not be replicated, is refused with an error naming the construct and why.
 *
 * The same analysis runs again at apply time ({@link replicationProblem}): an entry that did not
 * go through {@link prepareSql} is answered with an error result on every member, never applied.
 *
 * @example
 * ```ts
 * prepareSql([{ sql: "INSERT INTO t VALUES (random(), datetime('now'))" }], { now: new Date(), random: randomBytes });
 * // → [{ sql: "INSERT INTO t VALUES ((-4812...), datetime('2025-05-01 10:00:00.000'))" }]
 * ```
 */
import { ConclaveError } from "../../lib/errors.ts";
import { LruMap } from "../../lib/lru-map.ts";
import type { SqlStatement } from "./commands.ts";
import { identifierName, isTrivia, type SqlToken, stringLiteralValue, tokenizeSql } from "./sql-tokenizer.ts";

/** Largest `randomblob(N)` the primary expands into a literal. */
export const randomBlobBytesMax = 1024 * 1024;

/**
 * PRAGMAs allowed in replicated SQL and in reads: each only reads the schema or a setting that is
 * the same on every member. (schema_version, page_count and freelist_count are left out: they
 * depend on the file's history, which differs on a member restored from a snapshot.)
 */
export const readOnlyPragmas: ReadonlySet<string> = new Set([
  "table_info",
  "table_xinfo",
  "table_list",
  "index_list",
  "index_info",
  "index_xinfo",
  "foreign_key_list",
  "foreign_key_check",
  "user_version",
  "page_size",
  "encoding",
  "collation_list",
  "function_list",
  "pragma_list",
]);

/** The primary's inputs for the non-deterministic parts. */
export interface PrepareSqlOptions {
  /** The primary's clock: CURRENT_TIMESTAMP and 'now' become this instant. */
  readonly now: Date;
  /** Random bytes (crypto.randomBytes in production, seeded in tests). */
  readonly random: (byteCount: number) => Uint8Array;
}

/** Why a statement cannot be replicated as written. */
export interface ReplicationProblem {
  readonly construct: string;
  readonly reason: string;
}

const refusedStatements: Readonly<Record<string, string>> = {
  ATTACH: "another database file is not replicated; keep all tables in the replicated database",
  DETACH: "attached databases are not allowed, so there is nothing to detach",
  VACUUM: "it rewrites the whole file on every member at once; Conclave compacts the database in snapshots",
  BEGIN: "the state machine owns transactions: send several statements in one command instead",
  COMMIT: "the state machine owns transactions: a command's statements commit together",
  END: "the state machine owns transactions: a command's statements commit together",
  ROLLBACK: "the state machine owns transactions: a failing statement rolls back its whole command",
  SAVEPOINT: "the state machine owns transactions: send several statements in one command instead",
  RELEASE: "the state machine owns transactions: send several statements in one command instead",
};

/** Functions whose result differs between members or between runs of the same member. */
const refusedFunctions: Readonly<Record<string, string>> = {
  load_extension: "extensions are code outside the replicated log",
  total_changes: "it counts changes since the connection opened, which differs after a restart",
  sqlite_offset: "file offsets differ between a member that applied the log and one restored from a snapshot",
  sqlite_version: "it differs between members during a rolling upgrade",
  sqlite_source_id: "it differs between members during a rolling upgrade",
  sqlite_compileoption_used: "it differs between members during a rolling upgrade",
  sqlite_compileoption_get: "it differs between members during a rolling upgrade",
};

/** Tables whose content depends on the file layout, which differs after a snapshot restore. */
const refusedTables: Readonly<Record<string, string>> = {
  dbstat: "page statistics differ between a member that applied the log and one restored from a snapshot",
  sqlite_dbpage: "raw pages differ between members and writing them would corrupt the database",
};

const dateFunctions = new Set(["date", "time", "datetime", "julianday", "strftime", "unixepoch", "timediff"]);
const currentKeywords = new Set(["CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME"]);

interface Rewrite {
  /** Indexes into the token array, inclusive. */
  readonly from: number;
  readonly to: number;
  readonly construct: string;
  readonly replacement: (options: PrepareSqlOptions) => string;
}

interface Analysis {
  readonly tokens: readonly SqlToken[];
  readonly problem: ReplicationProblem | null;
  readonly rewrites: readonly Rewrite[];
}

/** Indexes of the tokens SQLite reads (not whitespace or comments). */
function significantIndexes(tokens: readonly SqlToken[]): number[] {
  const indexes: number[] = [];
  tokens.forEach((token, index) => {
    if (!isTrivia(token)) indexes.push(index);
  });
  return indexes;
}

function upperWord(token: SqlToken | undefined): string {
  return token?.kind === "word" ? token.text.toUpperCase() : "";
}

function statementProblem(tokens: readonly SqlToken[], order: readonly number[]): ReplicationProblem | null {
  const words = order.map((index) => upperWord(tokens[index]));
  const first = words[0] ?? "";
  const refusal = refusedStatements[first];
  if (refusal !== undefined) return { construct: first, reason: refusal };
  if (first === "PRAGMA") return pragmaProblem(tokens, order);
  if (first === "CREATE" && (words[1] === "TEMP" || words[1] === "TEMPORARY")) {
    return {
      construct: `CREATE ${words[1]}`,
      reason: "temporary objects live in one connection and vanish on restart, so members would diverge",
    };
  }
  return trailingStatementProblem(tokens, order, words);
}

function pragmaProblem(tokens: readonly SqlToken[], order: readonly number[]): ReplicationProblem | null {
  const parts = order.slice(1).map((index) => tokens[index] as SqlToken);
  const qualified = parts[1]?.text === ".";
  const nameToken = parts[qualified ? 2 : 0];
  const name = (nameToken === undefined ? "" : (identifierName(nameToken) ?? "")).toLowerCase();
  if (parts.some((token) => token.text === "=")) {
    return {
      construct: `PRAGMA ${name} = …`,
      reason: "settings are chosen by Conclave, the same on every member",
    };
  }
  if (!readOnlyPragmas.has(name)) {
    return {
      construct: `PRAGMA ${name}`,
      reason: `only read-only PRAGMAs are allowed (${[...readOnlyPragmas].join(", ")})`,
    };
  }
  return null;
}

/** One SQL text must hold one statement: node:sqlite silently ignores whatever follows the first. */
function trailingStatementProblem(
  tokens: readonly SqlToken[],
  order: readonly number[],
  words: readonly string[],
): ReplicationProblem | null {
  const isTrigger = words[0] === "CREATE" && words.slice(1, 3).includes("TRIGGER");
  const lastEnd = isTrigger ? words.lastIndexOf("END") : -1;
  for (let position = Math.max(lastEnd, 0); position < order.length; position += 1) {
    if (tokens[order[position] as number]?.text !== ";") continue;
    const rest = order.slice(position + 1).filter((index) => tokens[index]?.text !== ";");
    if (rest.length > 0) {
      return {
        construct: "several statements in one SQL text",
        reason: "send each statement as its own entry of `statements` (they still commit together)",
      };
    }
  }
  return null;
}

function identifierProblem(tokens: readonly SqlToken[], order: readonly number[]): ReplicationProblem | null {
  for (let position = 0; position < order.length; position += 1) {
    const token = tokens[order[position] as number] as SqlToken;
    const name = identifierName(token)?.toLowerCase();
    if (name === undefined) continue;
    const next = tokens[order[position + 1] ?? -1];
    if (name.startsWith("_conclave")) {
      return {
        construct: name,
        reason: "names starting with _conclave are reserved for Conclave's own tables",
      };
    }
    if (next?.text === "(" && refusedFunctions[name] !== undefined) {
      return { construct: `${name}()`, reason: refusedFunctions[name] };
    }
    if (refusedTables[name] !== undefined) return { construct: name, reason: refusedTables[name] };
    if (name === "temp" && next?.text === ".") {
      return { construct: "temp.", reason: "temporary tables live in one connection and vanish on restart" };
    }
  }
  return null;
}

/** Position (in `order`) of the ")" closing the "(" at `open`, or order.length when unclosed. */
function closingParen(tokens: readonly SqlToken[], order: readonly number[], open: number): number {
  let depth = 0;
  for (let position = open; position < order.length; position += 1) {
    const text = tokens[order[position] as number]?.text;
    if (text === "(") depth += 1;
    if (text === ")") depth -= 1;
    if (depth === 0) return position;
  }
  return order.length;
}

function timestampText(now: Date, part: "datetime" | "date" | "time" | "precise"): string {
  const iso = now.toISOString(); // 2025-05-01T10:00:00.000Z
  if (part === "date") return iso.slice(0, 10);
  if (part === "time") return iso.slice(11, 19);
  if (part === "datetime") return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

function randomIntegerLiteral(random: PrepareSqlOptions["random"]): string {
  const value = Buffer.from(random(8)).readBigInt64LE(0);
  // The smallest int64 has no positive counterpart: SQLite would read 9223372036854775808 as a real.
  if (value === -(2n ** 63n)) return "(-9223372036854775807 - 1)";
  return value < 0n ? `(${value})` : `${value}`;
}

function randomBlobRewrite(
  tokens: readonly SqlToken[],
  order: readonly number[],
  position: number,
): Rewrite | ReplicationProblem {
  const countToken = tokens[order[position + 2] ?? -1];
  const close = tokens[order[position + 3] ?? -1];
  if (countToken?.kind !== "number" || close?.text !== ")" || !/^[0-9]+$/.test(countToken.text)) {
    return {
      construct: "randomblob(…)",
      reason: "the byte count must be an integer literal so that the primary can generate the bytes",
    };
  }
  const byteCount = Math.max(1, Number(countToken.text)); // SQLite returns 1 byte for N < 1
  if (byteCount > randomBlobBytesMax) {
    return { construct: `randomblob(${countToken.text})`, reason: `at most ${randomBlobBytesMax} bytes` };
  }
  return {
    from: order[position] as number,
    to: order[position + 3] as number,
    construct: "randomblob()",
    replacement: ({ random }) => `X'${Buffer.from(random(byteCount)).toString("hex").toUpperCase()}'`,
  };
}

function nowArgumentRewrites(tokens: readonly SqlToken[], order: readonly number[], open: number): Rewrite[] {
  const rewrites: Rewrite[] = [];
  const close = closingParen(tokens, order, open);
  for (let position = open + 1; position < close; position += 1) {
    const token = tokens[order[position] as number] as SqlToken;
    if (token.kind === "string" && stringLiteralValue(token).toLowerCase() === "now") {
      const index = order[position] as number;
      rewrites.push({
        from: index,
        to: index,
        construct: "'now'",
        replacement: ({ now }) => `'${timestampText(now, "precise")}'`,
      });
    }
  }
  return rewrites;
}

function findRewrites(tokens: readonly SqlToken[], order: readonly number[]): Rewrite[] | ReplicationProblem {
  const rewrites: Rewrite[] = [];
  for (let position = 0; position < order.length; position += 1) {
    const index = order[position] as number;
    const word = upperWord(tokens[index]);
    const calls = tokens[order[position + 1] ?? -1]?.text === "(";
    if (word === "RANDOM" && calls && tokens[order[position + 2] ?? -1]?.text === ")") {
      rewrites.push({
        from: index,
        to: order[position + 2] as number,
        construct: "random()",
        replacement: ({ random }) => randomIntegerLiteral(random),
      });
    } else if (word === "RANDOMBLOB" && calls) {
      const rewrite = randomBlobRewrite(tokens, order, position);
      if (!("from" in rewrite)) return rewrite;
      rewrites.push(rewrite);
    } else if (currentKeywords.has(word)) {
      const part = word === "CURRENT_DATE" ? "date" : word === "CURRENT_TIME" ? "time" : "datetime";
      rewrites.push({
        from: index,
        to: index,
        construct: word,
        replacement: ({ now }) => `'${timestampText(now, part)}'`,
      });
    } else if (calls && dateFunctions.has(word.toLowerCase())) {
      rewrites.push(...nowArgumentRewrites(tokens, order, position + 1));
    }
  }
  return rewrites;
}

/** Most texts whose analysis is kept, and the longest text kept (so the cache stays small). */
const analysesMax = 256;
const analysisTextLengthMax = 2048;
/** Analyses by text: the same INSERT arrives over and over. */
const analyses = new LruMap<string, Analysis>(analysesMax);

/**
 * The analysis of `sql`, which depends on its text alone, kept for short texts: the primary
 * analyzes each request's SQL (prepareSql) and every member each entry's (replicationProblem).
 * The rewrites' replacements still read the clock and random source of each call.
 */
function analyze(sql: string): Analysis {
  if (sql.length > analysisTextLengthMax) return analyzeText(sql);
  const known = analyses.get(sql);
  if (known !== undefined) return known;
  const analysis = analyzeText(sql);
  analyses.set(sql, analysis);
  return analysis;
}

function analyzeText(sql: string): Analysis {
  const tokens = tokenizeSql(sql);
  const order = significantIndexes(tokens);
  if (order.length === 0) {
    return {
      tokens,
      problem: { construct: "an empty statement", reason: "there is nothing to apply" },
      rewrites: [],
    };
  }
  const problem = statementProblem(tokens, order) ?? identifierProblem(tokens, order);
  if (problem !== null) return { tokens, problem, rewrites: [] };
  const rewrites = findRewrites(tokens, order);
  if (!Array.isArray(rewrites)) return { tokens, problem: rewrites, rewrites: [] };
  const first = upperWord(tokens[order[0] as number]);
  if (rewrites.length > 0 && (first === "CREATE" || first === "ALTER")) {
    return {
      tokens,
      problem: {
        construct: `${rewrites[0]?.construct} in ${first}`,
        reason:
          "a schema object (default, trigger, view) is evaluated later on each member; write the value in the INSERT or UPDATE instead",
      },
      rewrites: [],
    };
  }
  return { tokens, problem: null, rewrites };
}

function refusedError(problem: ReplicationProblem, statementIndex: number): ConclaveError {
  return new ConclaveError(
    "CONCLAVE_SQL_REFUSED",
    `statement ${statementIndex}: ${problem.construct} cannot be replicated: ${problem.reason}`,
    { statementIndex, construct: problem.construct },
  );
}

/**
 * Rewrites the non-deterministic parts of each statement into literals (on the primary, before
 * proposing). Throws `CONCLAVE_SQL_REFUSED` naming the construct for what cannot be replicated.
 */
export function prepareSql(statements: readonly SqlStatement[], options: PrepareSqlOptions): SqlStatement[] {
  return statements.map((statement, statementIndex) => {
    const { tokens, problem, rewrites } = analyze(statement.sql);
    if (problem !== null) throw refusedError(problem, statementIndex);
    if (rewrites.length === 0) return statement;
    let sql = "";
    let next = 0;
    for (const rewrite of rewrites) {
      sql += tokens
        .slice(next, rewrite.from)
        .map((token) => token.text)
        .join("");
      sql += rewrite.replacement(options);
      next = rewrite.to + 1;
    }
    sql += tokens
      .slice(next)
      .map((token) => token.text)
      .join("");
    return statement.params === undefined ? { sql } : { sql, params: statement.params };
  });
}

/**
 * The apply-time check: null when `sql` can be applied as is; otherwise why not. A construct
 * that {@link prepareSql} would have rewritten counts as a problem (the entry was not prepared).
 */
export function replicationProblem(sql: string): ReplicationProblem | null {
  const { problem, rewrites } = analyze(sql);
  if (problem !== null) return problem;
  const first = rewrites[0];
  if (first === undefined) return null;
  return {
    construct: first.construct,
    reason: "it is not deterministic and the entry was not prepared with prepareSql before it was proposed",
  };
}

/**
 * The check for local reads: one non-empty statement (node:sqlite would silently ignore the rest).
 * What a read may do is enforced by the read-only connection and its authorizer.
 */
export function readQueryProblem(sql: string): ReplicationProblem | null {
  const tokens = tokenizeSql(sql);
  const order = significantIndexes(tokens);
  if (order.length === 0) return { construct: "an empty query", reason: "there is nothing to run" };
  const words = order.map((index) => upperWord(tokens[index]));
  return trailingStatementProblem(tokens, order, words);
}
