/**
 * The replicated SQL statements a member runs, prepared once per text instead of once per entry
 * (the check of the text, `replicationProblem`, is kept by sql-rewrite.ts). Compiling each entry
 * ran SQLite's compiler and the JS authorizer for every table and column it names: single-row
 * INSERT ×64 went from about 4,100 to 4,700 per second without it.
 *
 * A cached statement must do exactly what a fresh one would, on every member, whether or not
 * that member has it cached (one that restarted has not):
 * - bindings: node:sqlite clears them on every run, so a run binds only what it is given;
 * - schema: the cache is dropped whenever `PRAGMA schema_version` moves (DDL), and SQLite itself
 *   re-prepares a statement whose schema changed;
 * - plans: `ANALYZE` changes the planner's statistics without moving the schema version, so the
 *   cache is also dropped after any statement that mentions it (a plan can decide, e.g., the
 *   order in which `INSERT … SELECT` assigns rowids);
 * - a statement that failed is not kept, and the cache belongs to one connection (`clear` on a
 *   restore);
 * - texts over 2,048 characters are prepared each time, so the cache stays small.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { LruMap } from "../../lib/lru-map.ts";

/** Most statement texts kept (oldest use dropped first). */
export const replicatedStatementsMax = 256;
const cachedTextLengthMax = 2048;

const plannerStatistics = /analyze/i;

export class ReplicatedStatements {
  #schemaVersion = Number.NaN;
  readonly #statements: LruMap<string, StatementSync>;

  constructor(capacity = replicatedStatementsMax) {
    this.#statements = new LruMap(capacity);
  }

  /**
   * The prepared statement for `sql` on `db` at `schemaVersion` (prepared now if it is not
   * cached; a prepare error is thrown as from `db.prepare`).
   */
  statement(db: DatabaseSync, sql: string, schemaVersion: number): StatementSync {
    if (schemaVersion !== this.#schemaVersion) {
      this.#statements.clear();
      this.#schemaVersion = schemaVersion;
    }
    const cached = this.#statements.get(sql);
    if (cached !== undefined) return cached;
    const prepared = db.prepare(sql);
    prepared.setReadBigInts(true);
    if (sql.length <= cachedTextLengthMax && !plannerStatistics.test(sql))
      this.#statements.set(sql, prepared);
    return prepared;
  }

  /**
   * After `sql` ran (or failed): forgets it when it failed, everything when it may have changed
   * plans. True when it may have run ANALYZE (the caller then puts its statistics in order).
   */
  ran(sql: string, succeeded: boolean): boolean {
    const statistics = plannerStatistics.test(sql);
    if (statistics) this.#statements.clear();
    else if (!succeeded) this.#statements.delete(sql);
    return statistics;
  }

  /** Drops every prepared statement (a new connection, after a restore). */
  clear(): void {
    this.#statements.clear();
    this.#schemaVersion = Number.NaN;
  }

  get size(): number {
    return this.#statements.size;
  }
}
