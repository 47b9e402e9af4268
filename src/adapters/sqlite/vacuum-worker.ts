/**
 * Worker thread body for background snapshots: copies the database with `VACUUM INTO` on its
 * own read-only connection, so the node's event loop keeps running (heartbeats, writes) while a
 * large database is copied. The copy is a consistent read of the latest commit when it starts;
 * the caller learns which index it holds from the copy itself (`_conclave_meta`).
 *
 * Input (workerData): `{ source, target }` paths. Output: one message, `{ ok: true }` or
 * `{ ok: false, message }`.
 */
import { DatabaseSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";

const { source, target } = workerData as { source: string; target: string };
try {
  // timeout: a checkpoint of the writer may hold the WAL lock for a moment.
  const db = new DatabaseSync(source, { readOnly: true, timeout: 10_000 });
  try {
    db.exec(`VACUUM INTO '${target.replaceAll("'", "''")}'`);
  } finally {
    db.close();
  }
  parentPort?.postMessage({ ok: true });
} catch (error) {
  parentPort?.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) });
}
