/**
 * Rewrites the KV tables of a database made by an earlier release into today's layout
 * (kv-schema.ts), once, when the database is opened (at start and after a snapshot restore).
 *
 * Earlier releases kept each value twice: in `_conclave_kv.value` and in its history row; the
 * oldest ones also made both tables `WITHOUT ROWID`. Now `_conclave_kv.value_row` points at the
 * history row that holds the value. The rewrite, in one transaction:
 * 1. a `WITHOUT ROWID` history table is copied into a rowid table, in (revision, seq) order;
 * 2. each key gets the history row of its last put (same revision and key, highest seq). When
 *    compaction already dropped it, a row is added at the key's mod_revision, below the
 *    compacted revision, where no watcher reads (changesSince reads only later revisions);
 * 3. the key table is rebuilt without the value column, then takes the old name back.
 *
 * Every answer stays the same; the file's layout is new, so the database's content hash differs
 * from that of a member that has not migrated yet. An earlier release cannot open the result.
 */
import type { DatabaseSync } from "node:sqlite";
import { kvHistoryTableSql, kvLeaseIndexSql, kvTableSql } from "./kv-schema.ts";
import type { KeyRow } from "./kv-store.ts";

function columnsOf(db: DatabaseSync, table: string): string[] {
  return (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map(
    (column) => column.name,
  );
}

function isWithoutRowid(db: DatabaseSync, table: string): boolean {
  const row = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) as
    | { sql: string }
    | undefined;
  return row !== undefined && /WITHOUT\s+ROWID\s*$/i.test(row.sql);
}

/** True when the database holds KV tables of an earlier layout (values in `_conclave_kv`). */
export function needsKvLayoutMigration(db: DatabaseSync): boolean {
  return columnsOf(db, "_conclave_kv").includes("value");
}

/** Rewrites an earlier layout (see the module comment); does nothing to a current or new database. */
export function migrateKvLayout(db: DatabaseSync): void {
  if (!needsKvLayoutMigration(db)) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    if (isWithoutRowid(db, "_conclave_kv_history")) {
      db.exec(`${kvHistoryTableSql("_conclave_kv_history_new")}
        INSERT INTO _conclave_kv_history_new (revision, seq, key, type, value)
          SELECT revision, seq, key, type, value FROM _conclave_kv_history ORDER BY revision, seq;
        DROP TABLE _conclave_kv_history;
        ALTER TABLE _conclave_kv_history_new RENAME TO _conclave_kv_history;`);
    }
    db.exec(kvTableSql("_conclave_kv_new"));
    const lastPut = db.prepare(
      `SELECT rowid AS row FROM _conclave_kv_history
       WHERE revision = ? AND key = ? AND type = 'put' ORDER BY seq DESC LIMIT 1`,
    );
    const nextSeq = db.prepare(
      "SELECT coalesce(max(seq) + 1, 0) AS seq FROM _conclave_kv_history WHERE revision = ?",
    );
    const addHistory = db.prepare(
      "INSERT INTO _conclave_kv_history (revision, seq, key, type, value) VALUES (?, ?, ?, 'put', ?)",
    );
    const addKey = db.prepare(
      `INSERT INTO _conclave_kv_new (key, create_revision, mod_revision, version, lease, value_row)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    for (const row of db.prepare("SELECT * FROM _conclave_kv ORDER BY key").iterate() as Iterable<KeyRow>) {
      const found = lastPut.get(row.mod_revision, row.key) as { row: number } | undefined;
      let valueRow = found?.row;
      if (valueRow === undefined) {
        const { seq } = nextSeq.get(row.mod_revision) as { seq: number };
        valueRow = Number(addHistory.run(row.mod_revision, seq, row.key, row.value).lastInsertRowid);
      }
      addKey.run(row.key, row.create_revision, row.mod_revision, row.version, row.lease, valueRow);
    }
    db.exec(`DROP TABLE _conclave_kv;
      ALTER TABLE _conclave_kv_new RENAME TO _conclave_kv;
      ${kvLeaseIndexSql}`);
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}
