/**
 * Snapshot files of the replicated database: produced by `VACUUM INTO` (a consistent, compact
 * copy), streamed in 1 MiB chunks so that a large database is never held in memory, and written
 * back (restore) to a temporary file that is fsynced and checked before it replaces the database.
 */
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { type FileHandle, open, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { ConclaveError } from "../../lib/errors.ts";
import { sqliteErrorCode } from "./sqlite-values.ts";

/** Size of each chunk a snapshot yields. */
export const snapshotChunkBytes = 1024 * 1024;

/** Streams a file in chunks, then deletes it (also when the reader stops early). */
export async function* streamFileThenDelete(path: string, sizeBytes: number): AsyncGenerator<Uint8Array> {
  try {
    const handle = await open(path, "r");
    try {
      let position = 0;
      while (position < sizeBytes) {
        const chunk = Buffer.allocUnsafe(Math.min(snapshotChunkBytes, sizeBytes - position));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        yield chunk.subarray(0, bytesRead);
      }
      if (position !== sizeBytes) {
        throw new ConclaveError(
          "CONCLAVE_SNAPSHOT_INVALID",
          `snapshot file ${path} ended after ${position} of ${sizeBytes} bytes`,
        );
      }
    } finally {
      await handle.close();
    }
  } finally {
    await rm(path, { force: true });
  }
}

/** Writes `chunks` to `path` and fsyncs it; throws CONCLAVE_SNAPSHOT_INVALID when the size differs. */
export async function writeChunksToFile(
  chunks: AsyncIterable<Uint8Array>,
  path: string,
  sizeBytes: number,
): Promise<void> {
  const handle = await open(path, "w");
  try {
    let written = 0;
    for await (const chunk of chunks) {
      written += chunk.byteLength;
      if (written > sizeBytes) break;
      await handle.write(chunk);
    }
    if (written !== sizeBytes) {
      throw new ConclaveError(
        "CONCLAVE_SNAPSHOT_INVALID",
        `the snapshot should hold ${sizeBytes} bytes but ${written > sizeBytes ? "held more" : `ended after ${written}`}`,
      );
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Opens a restored file read-only and checks it: `PRAGMA quick_check` and Conclave's metadata.
 * Returns the applied index it holds; throws CONCLAVE_SNAPSHOT_INVALID otherwise.
 */
export function checkDatabaseFile(path: string): number {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (error) {
    throw new ConclaveError(
      "CONCLAVE_SNAPSHOT_INVALID",
      `the snapshot is not a SQLite database: ${String(error)}`,
    );
  }
  try {
    const check = db.prepare("PRAGMA quick_check").all() as { quick_check: string }[];
    if (check.length !== 1 || check[0]?.quick_check !== "ok") {
      const found = check
        .map((row) => row.quick_check)
        .slice(0, 3)
        .join("; ");
      throw new ConclaveError(
        "CONCLAVE_SNAPSHOT_INVALID",
        `the snapshot failed PRAGMA quick_check: ${found}`,
      );
    }
    return appliedIndexIn(db);
  } catch (error) {
    if (error instanceof ConclaveError) throw error;
    throw new ConclaveError(
      "CONCLAVE_SNAPSHOT_INVALID",
      `the snapshot is not a Conclave database: ${String(error)}`,
    );
  } finally {
    db.close();
  }
}

/**
 * Makes a copy's header match the source, so that a member restored from it has the same bytes
 * as the members that applied the log. `VACUUM INTO` writes a rollback-journal header (bytes
 * 18–19 = 1; switching to WAL at open would then bump the schema cookie) and a schema cookie one
 * higher than the source's (bytes 40–43); an online backup writes the destination's old cookie
 * plus one (1 for a new file). We write WAL mode (2, 2, as SQLite does when it switches) and the
 * source's cookie (the schema is the same, so the cookie is too).
 */
export function alignSnapshotHeader(path: string, schemaCookie: number): void {
  const descriptor = openSync(path, "r+");
  try {
    writeSync(descriptor, Buffer.from([2, 2]), 0, 2, 18);
    const cookie = Buffer.alloc(4);
    cookie.writeUInt32BE(schemaCookie >>> 0);
    writeSync(descriptor, cookie, 0, 4, 40);
  } finally {
    closeSync(descriptor);
  }
}

/** The applied index a database records in `_conclave_meta` (0 when it has none). */
function appliedIndexIn(db: DatabaseSync): number {
  const meta = db.prepare("SELECT applied_index FROM _conclave_meta WHERE id = 0").get() as
    | { applied_index: number }
    | undefined;
  return meta?.applied_index ?? 0;
}

/**
 * Deletes the `-wal`, `-shm` and `-journal` files SQLite leaves beside a database file that a
 * connection opened, once no connection has it open. A snapshot copy carries a WAL-mode header,
 * so reading it (its applied index, a restore's check) made an empty `-wal` and a 32 KiB `-shm`
 * beside it that nothing removed: the copy itself moved on (into the snapshot store, or over
 * db.sqlite), and every snapshot left two more files in the data directory.
 */
export function removeSidecarFiles(path: string): void {
  for (const suffix of ["-wal", "-shm", "-journal"]) rmSync(`${path}${suffix}`, { force: true });
}

/** The applied index recorded in a fresh copy (before its header is aligned with the source's). */
export function readCopyAppliedIndex(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return appliedIndexIn(db);
  } finally {
    db.close();
  }
}

/**
 * Most pages one backup step may copy: more than any database has, so the whole copy is ONE
 * `sqlite3_backup_step` — one read transaction on the source, hence one consistent state. In
 * several steps, a write between two steps (from the applying connection) would restart it.
 */
const backupPagesPerStepMax = 2 ** 31 - 1;

/**
 * Copies the database at `source` into `target` with SQLite's online backup, on Node's thread
 * pool (`node:sqlite` `backup`), through a read-only connection of its own: the event loop and
 * the applying connection go on meanwhile (WAL readers never block the writer). The copy has the
 * source's pages and header as they were when the step began. Costs no thread start (a worker
 * thread cost ~150 ms of CPU and ~20 MB of RSS that stayed, per snapshot).
 */
export async function copyDatabaseInBackground(source: string, target: string): Promise<void> {
  let reader: DatabaseSync;
  try {
    // timeout: a checkpoint of the writer may hold the WAL lock for a moment.
    reader = new DatabaseSync(source, { readOnly: true, timeout: 10_000 });
  } catch (error) {
    throw new ConclaveError("CONCLAVE_SNAPSHOT_FAILED", `copying the database failed: ${String(error)}`);
  }
  try {
    await backup(reader, target, { rate: backupPagesPerStepMax });
  } catch (error) {
    // A full disk is said so (the runtime tries again later, and the operator must free room for
    // a whole copy of the database); any other failure of the copy is a failed snapshot.
    if (sqliteErrorCode(error) === "SQLITE_FULL") {
      throw new ConclaveError(
        "CONCLAVE_DISK_FULL",
        `copying the database for a snapshot found the disk full (${String(error)}): a snapshot needs room for a whole copy of ${source}`,
        { directory: dirname(target) },
      );
    }
    throw new ConclaveError("CONCLAVE_SNAPSHOT_FAILED", `copying the database failed: ${String(error)}`);
  } finally {
    reader.close();
  }
}

/** fsyncs a directory so that a rename in it survives a crash. */
export function fsyncDirectory(path: string): void {
  const descriptor = openSync(path, "r");
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

/**
 * fsyncs a file off the event loop (Linux syncs the file's pages whatever descriptor asks); a
 * file that is not there (a WAL removed by a restore meanwhile) has nothing to sync.
 */
export async function fsyncFileInBackground(path: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw syncFailure(path, error);
  }
  try {
    await handle.sync();
  } catch (error) {
    throw syncFailure(path, error);
  } finally {
    await handle.close();
  }
}

function syncFailure(path: string, error: unknown): ConclaveError {
  return new ConclaveError(
    "CONCLAVE_STORAGE_FAILED",
    `could not sync ${path} (${String(error)}); the node stops rather than compact its log against data that may not be on disk`,
    { file: path },
  );
}
