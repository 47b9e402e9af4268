/**
 * The file-backed {@link RaftStorage} of a node's data directory:
 *
 * ```
 * <dataDirectory>/log/00000000000000000001.seg ...   the log (file-log-store.ts)
 * <dataDirectory>/hardstate                          term, vote, commit (file-stable-store.ts)
 * <dataDirectory>/snapshots/<term>-<index>.snap      snapshots (file-snapshot-store.ts)
 * ```
 */
import { join } from "node:path";
import type { RaftStorage } from "../../ports/storage.ts";
import type { DurableWrites } from "./durable-writes.ts";
import { FileLogStore } from "./file-log-store.ts";
import { FileSnapshotStore } from "./file-snapshot-store.ts";
import { FileStableStore } from "./file-stable-store.ts";
import { ComposedRaftStorage } from "./raft-storage.ts";

export interface FileStorageOptions {
  /** Log segments roll at about this size (default 64 MiB). */
  readonly segmentBytesMax?: number;
  /** Snapshots kept (default 2). */
  readonly snapshotRetainCount?: number;
  /** Counts the log's and the hard state's durable writes and fsyncs (GET /v1/metrics). */
  readonly durableWrites?: DurableWrites;
}

/**
 * Storage in `dataDirectory` (created if missing). Call `open()` before anything else.
 *
 * @example
 * ```ts
 * const storage = createFileStorage("/var/lib/conclave");
 * const { hardState, snapshot, entries } = await storage.open();
 * ```
 */
export function createFileStorage(dataDirectory: string, options: FileStorageOptions = {}): RaftStorage {
  const logDirectory = join(dataDirectory, "log");
  return new ComposedRaftStorage({
    log: new FileLogStore(logDirectory, {
      ...(options.segmentBytesMax === undefined ? {} : { segmentBytesMax: options.segmentBytesMax }),
      ...(options.durableWrites === undefined ? {} : { durableWrites: options.durableWrites }),
    }),
    stable: new FileStableStore(dataDirectory, options.durableWrites ?? null),
    snapshots: new FileSnapshotStore(
      join(dataDirectory, "snapshots"),
      options.snapshotRetainCount === undefined ? {} : { retainCount: options.snapshotRetainCount },
    ),
    logLocation: logDirectory,
  });
}
