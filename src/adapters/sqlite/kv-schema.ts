/**
 * The KV store's tables, inside the replicated database. Keys are BLOBs (UTF-8 bytes) so that a
 * prefix range is a plain byte range (`key >= prefix AND key < prefixEnd`) served by the
 * primary key's index. Every name starts with `_conclave`, which replicated SQL may not touch.
 *
 * A value is stored once, in its `_conclave_kv_history` row; `_conclave_kv.value_row` is that
 * row's rowid, as etcd keeps each value once under its revision. Storing it in both tables wrote
 * every value twice to the WAL and again at the checkpoint: with 10 KB values, a put cost about
 * 77 KB of disk writes per member, now 45 KB (figures in DESIGN.md, "KV store"). History compaction
 * keeps the rows that keys still point at (kv-watch.ts); a key's row below the compacted
 * revision is deleted when the key is overwritten or deleted (kv-store.ts).
 *
 * Both are rowid tables, not `WITHOUT ROWID`: with 4 KiB pages a `WITHOUT ROWID` row longer
 * than about 1,000 bytes spills into an overflow page of its own, and the history's rowid is
 * what `value_row` points at. New rows append at the table's end; only the small index entry
 * goes where the key sorts. Databases made by earlier releases (values in `_conclave_kv`,
 * possibly `WITHOUT ROWID` tables) are rewritten once, when opened: kv-layout-migration.ts.
 */
import type { DatabaseSync } from "node:sqlite";

/** The DDL of the key table, under `name` (the migration builds it under another name first). */
export function kvTableSql(name: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
  key BLOB PRIMARY KEY,
  create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease INTEGER NOT NULL,
  value_row INTEGER NOT NULL
);`;
}

/** The DDL of the history table, under `name`. */
export function kvHistoryTableSql(name: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
  revision INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  key BLOB NOT NULL,
  type TEXT NOT NULL,
  value BLOB,
  PRIMARY KEY (revision, seq)
);`;
}

export const kvLeaseIndexSql =
  "CREATE INDEX IF NOT EXISTS _conclave_kv_by_lease ON _conclave_kv (lease) WHERE lease <> 0;";

const schemaSql = `
${kvTableSql("_conclave_kv")}
${kvLeaseIndexSql}
CREATE TABLE IF NOT EXISTS _conclave_kv_lease (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ttl_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS _conclave_kv_lease_by_expiry ON _conclave_kv_lease (expires_at_ms);
${kvHistoryTableSql("_conclave_kv_history")}
CREATE TABLE IF NOT EXISTS _conclave_kv_meta (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  revision INTEGER NOT NULL,
  compacted_revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO _conclave_kv_meta (id, revision, compacted_revision) VALUES (0, 0, 0);
`;

/**
 * Creates the KV tables when missing (the same DDL on every member, so files stay identical).
 * An earlier release's tables are rewritten first, by `migrateKvLayout`.
 */
export function createKvSchema(db: DatabaseSync): void {
  db.exec(schemaSql);
}

/** The UTF-8 bytes of a key or prefix. */
export function keyBytes(key: string): Buffer {
  return Buffer.from(key, "utf8");
}

/**
 * The smallest byte string greater than every string starting with `prefix`, or null when there
 * is none (an empty prefix, or all 0xFF bytes — impossible in UTF-8).
 */
export function prefixEnd(prefix: Uint8Array): Buffer | null {
  const end = Buffer.from(prefix);
  for (let at = end.length - 1; at >= 0; at -= 1) {
    if ((end[at] as number) < 0xff) {
      end[at] = (end[at] as number) + 1;
      return end.subarray(0, at + 1);
    }
  }
  return null;
}
