/**
 * SQLite authorizers: the second line of defence after the tokenizer checks of sql-rewrite.ts.
 * SQLite consults them while compiling each statement, so they see what the statement really
 * does (a trigger's body, a view's functions) rather than its text.
 */
import { constants } from "node:sqlite";
import { readOnlyPragmas } from "./sql-rewrite.ts";

/** Functions whose result differs between members or runs. */
const nonDeterministicFunctions = new Set([
  "random",
  "randomblob",
  "load_extension",
  "total_changes",
  "sqlite_offset",
  "sqlite_version",
  "sqlite_source_id",
  "sqlite_compileoption_used",
  "sqlite_compileoption_get",
]);

const writeActions = new Set([
  constants.SQLITE_INSERT,
  constants.SQLITE_UPDATE,
  constants.SQLITE_DELETE,
  constants.SQLITE_DROP_TABLE,
  constants.SQLITE_ALTER_TABLE,
  constants.SQLITE_CREATE_INDEX,
  constants.SQLITE_DROP_INDEX,
  constants.SQLITE_CREATE_TRIGGER,
  constants.SQLITE_DROP_TRIGGER,
]);

const alwaysDenied = new Set([
  constants.SQLITE_ATTACH,
  constants.SQLITE_DETACH,
  constants.SQLITE_TRANSACTION,
  constants.SQLITE_SAVEPOINT,
  constants.SQLITE_CREATE_TEMP_INDEX,
  constants.SQLITE_CREATE_TEMP_TABLE,
  constants.SQLITE_CREATE_TEMP_TRIGGER,
  constants.SQLITE_CREATE_TEMP_VIEW,
]);

function isReserved(name: string | null): boolean {
  return name?.toLowerCase().startsWith("_conclave") ?? false;
}

/** PRAGMAs whose argument names a table or index (any other argument sets a value). */
const pragmasTakingAName = new Set([
  "table_info",
  "table_xinfo",
  "table_list",
  "index_list",
  "index_info",
  "index_xinfo",
  "foreign_key_list",
  "foreign_key_check",
]);

function pragmaAllowed(name: string | null, argument: string | null): boolean {
  const lower = (name ?? "").toLowerCase();
  return readOnlyPragmas.has(lower) && (argument === null || pragmasTakingAName.has(lower));
}

/**
 * For replicated statements: denies what would diverge members or touch Conclave's own tables.
 * `active()` is false while the state machine runs its own statements.
 */
export function replicatedSqlAuthorizer(
  active: () => boolean,
): (action: number, first: string | null, second: string | null) => number {
  return (action, first, second) => {
    if (!active()) return constants.SQLITE_OK;
    if (alwaysDenied.has(action)) return constants.SQLITE_DENY;
    if (action === constants.SQLITE_PRAGMA)
      return pragmaAllowed(first, second) ? constants.SQLITE_OK : constants.SQLITE_DENY;
    if (action === constants.SQLITE_FUNCTION && nonDeterministicFunctions.has((second ?? "").toLowerCase())) {
      return constants.SQLITE_DENY;
    }
    if (writeActions.has(action) && (isReserved(first) || isReserved(second))) return constants.SQLITE_DENY;
    return constants.SQLITE_OK;
  };
}

const readActions = new Set([
  constants.SQLITE_SELECT,
  constants.SQLITE_READ,
  constants.SQLITE_RECURSIVE,
  constants.SQLITE_FUNCTION,
]);

/** For local reads: only SELECT, reading tables, functions (not load_extension) and read-only PRAGMAs. */
export function readOnlyAuthorizer(action: number, first: string | null, second: string | null): number {
  if (action === constants.SQLITE_PRAGMA)
    return pragmaAllowed(first, second) ? constants.SQLITE_OK : constants.SQLITE_DENY;
  if (action === constants.SQLITE_FUNCTION && (second ?? "").toLowerCase() === "load_extension") {
    return constants.SQLITE_DENY;
  }
  return readActions.has(action) ? constants.SQLITE_OK : constants.SQLITE_DENY;
}
