/**
 * One process per data directory: two nodes writing the same log would corrupt it.
 *
 * Node has no flock(), so the lock is a `LOCK` file created exclusively (O_EXCL) holding the
 * owner's PID. A lock whose PID no longer runs is stale (the owner crashed) and is taken over.
 * The residual risk — the PID was reused by an unrelated process — only ever refuses a start,
 * with a message that says which PID to check; it never lets two nodes in.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ConclaveError } from "../../lib/errors.ts";

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/** True while process `pid` exists (EPERM: it does, under another user). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock of `dataDir` (which must exist) or throws `CONCLAVE_DATA_DIR_LOCKED`. */
export function acquireDataDirLock(dataDir: string): DataDirLock {
  const path = join(dataDir, "LOCK");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return {
        path,
        release: () => {
          if (released) return;
          released = true;
          try {
            unlinkSync(path);
          } catch {
            // already gone: nothing to release
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = Number.parseInt(readLock(path), 10);
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && processRuns(owner)) {
      throw new ConclaveError(
        "CONCLAVE_DATA_DIR_LOCKED",
        `The data directory ${dataDir} is in use by another Conclave process (PID ${owner}). Stop that node first, or give this one another data directory (node.data_dir).`,
        { dataDir, pid: owner },
      );
    }
    // The owner is gone (crash, kill -9): the lock is stale.
    try {
      unlinkSync(path);
    } catch {
      // someone else removed it first; try again
    }
  }
  throw new ConclaveError(
    "CONCLAVE_DATA_DIR_LOCKED",
    `Could not take the lock ${path}; another process keeps creating it. Make sure only one node uses ${dataDir}.`,
    { dataDir },
  );
}

function readLock(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
}
