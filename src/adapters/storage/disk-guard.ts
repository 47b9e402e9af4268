/**
 * How the file stores react to disk errors: a full disk is an expected, recoverable outcome;
 * anything else from a write or an fsync is fail-stop.
 */
import type { FileHandle } from "node:fs/promises";
import { statfs } from "node:fs/promises";
import { ConclaveError } from "../../lib/errors.ts";
import type { DurableWrites } from "./durable-writes.ts";

function errorCode(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") {
    return error.code;
  }
  return "unknown";
}

/** True for the errno codes that mean "no space left" (quota included). */
export function isDiskFullError(error: unknown): boolean {
  const code = errorCode(error);
  return code === "ENOSPC" || code === "EDQUOT";
}

/** The error `open()` throws for a file that cannot be trusted. */
export function corruptStorageError(file: string, offsetBytes: number, problem: string): ConclaveError {
  return new ConclaveError(
    "CONCLAVE_STORAGE_CORRUPT",
    `${file} is corrupt at byte offset ${offsetBytes}: ${problem}. Conclave will not serve data from a ` +
      "corrupt log. Restore this member from the others: stop it, wipe its data directory, and let it " +
      "rejoin the cluster (it receives a snapshot and the log from the primary).",
    { file, offsetBytes, problem },
  );
}

/**
 * Tracks whether a store has failed. Once a write or fsync has failed with anything but a full
 * disk, the store is failed for good and every later call throws the same error: the kernel may
 * have dropped the dirty pages of a failed fsync, so retrying it could report success for data
 * that is gone (PostgreSQL's "fsyncgate", 2018).
 */
export class DiskGuard {
  readonly directory: string;
  readonly #durableWrites: DurableWrites | null;
  #failure: ConclaveError | null = null;

  /** `durableWrites`: where fsyncs and O_DSYNC writes are counted (GET /v1/metrics), if anywhere. */
  constructor(directory: string, durableWrites: DurableWrites | null = null) {
    this.directory = directory;
    this.#durableWrites = durableWrites;
  }

  /** Counts a durable write of `bytes` that started at `startedMs` (performance.now()) and is done. */
  countDurable(bytes: number, startedMs: number): void {
    this.#durableWrites?.record(bytes, (performance.now() - startedMs) / 1000);
  }

  /** Throws the fail-stop error if the store has failed. */
  assertUsable(): void {
    if (this.#failure !== null) throw this.#failure;
  }

  get failed(): boolean {
    return this.#failure !== null;
  }

  /** Marks the store failed (idempotent) and returns the error to throw. */
  fail(cause: unknown, operation: string): ConclaveError {
    this.#failure ??= new ConclaveError(
      "CONCLAVE_STORAGE_FAILED",
      `${operation} failed (${errorCode(cause)}); the node stops to protect your data; check the disk ` +
        `holding ${this.directory} (dmesg, SMART), then restart the node.`,
      { directory: this.directory, operation, errno: errorCode(cause) },
      { cause },
    );
    return this.#failure;
  }

  /** fsync (or fdatasync) once; any failure is fail-stop. Never retried. */
  async flush(handle: FileHandle, file: string, dataOnly = false): Promise<void> {
    this.assertUsable();
    const startedMs = performance.now();
    try {
      if (dataOnly) await handle.datasync();
      else await handle.sync();
    } catch (error) {
      throw this.fail(error, `fsync of ${file}`);
    }
    this.countDurable(0, startedMs);
  }

  /**
   * Runs a write-like operation. A full disk becomes `CONCLAVE_DISK_FULL` (after `undo`, which
   * cuts the partial write back); any other error is fail-stop.
   */
  async write<T>(
    operation: string,
    bytesNeeded: number,
    run: () => Promise<T>,
    undo: () => Promise<void>,
  ): Promise<T> {
    this.assertUsable();
    try {
      return await run();
    } catch (error) {
      if (!isDiskFullError(error)) throw this.fail(error, operation);
      try {
        await undo();
      } catch (undoError) {
        throw this.fail(undoError, `cutting back a partial write after ${operation}`);
      }
      throw await this.#diskFull(bytesNeeded);
    }
  }

  async #diskFull(bytesNeeded: number): Promise<ConclaveError> {
    let freeBytes = -1;
    try {
      const stats = await statfs(this.directory);
      freeBytes = stats.bavail * stats.bsize;
    } catch {
      // Free space is only informative; the error below is what matters.
    }
    const free = freeBytes >= 0 ? `${freeBytes} bytes free` : "free space unknown";
    return new ConclaveError(
      "CONCLAVE_DISK_FULL",
      `The disk holding ${this.directory} is full (${free}); at least ${bytesNeeded} more bytes are needed. ` +
        "Nothing already synced was lost and the pending writes are kept: free space (or grow the volume) " +
        "and the node continues.",
      { directory: this.directory, bytesNeeded, freeBytes },
    );
  }
}
