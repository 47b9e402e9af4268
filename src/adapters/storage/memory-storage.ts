/**
 * The in-memory {@link RaftStorage} for the simulator: the same contract as the file storage,
 * plus `crash()` (lose everything not synced) and fault injection.
 */

import type { StorageFault } from "./memory-faults.ts";
import { MemoryLogStore } from "./memory-log-store.ts";
import { MemorySnapshotStore } from "./memory-snapshot-store.ts";
import { MemoryStableStore } from "./memory-stable-store.ts";
import { ComposedRaftStorage } from "./raft-storage.ts";

/** One node's "disk". After `crash()`, call `open()` again on a new storage over the same disk. */
export class MemoryDisk {
  readonly log = new MemoryLogStore();
  readonly stable = new MemoryStableStore();
  readonly snapshots: MemorySnapshotStore;

  constructor(options: { snapshotRetainCount?: number } = {}) {
    this.snapshots = new MemorySnapshotStore(
      options.snapshotRetainCount === undefined ? {} : { retainCount: options.snapshotRetainCount },
    );
  }

  /** A storage over this disk (one at a time: open it after the previous one crashed or closed). */
  storage(): ComposedRaftStorage {
    return new ComposedRaftStorage({
      log: this.log,
      stable: this.stable,
      snapshots: this.snapshots,
      logLocation: "memory log",
    });
  }

  /** Power cut: everything not synced is lost, unfinished snapshots vanish. */
  crash(): void {
    this.log.crash();
    this.stable.crash();
    this.snapshots.crash();
  }

  /** The next sync of the log and hard state fails with `fault`. */
  injectFault(fault: StorageFault): void {
    this.log.injectFault(fault);
    this.stable.injectFault(fault);
  }
}
