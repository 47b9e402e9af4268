/**
 * {@link RaftStorage} over any log, stable and snapshot store: group commit, a shared fail-stop
 * state, and the reconciliation of what the three stores recovered at open.
 */
import { ConclaveError, isConclaveError } from "../../lib/errors.ts";
import type {
  LogStore,
  RaftStorage,
  RecoveredState,
  SnapshotStore,
  StableStore,
} from "../../ports/storage.ts";
import type { Entry, HardState, SnapshotMeta } from "../../raft/types.ts";

export interface StorageParts {
  readonly log: LogStore;
  readonly stable: StableStore;
  readonly snapshots: SnapshotStore;
  /** Names the log's location in error messages. */
  readonly logLocation: string;
}

/**
 * Makes the hard state consistent with the log a crash left behind. The log and the hard state
 * are separate files synced in parallel, so a crash during a sync can keep one and not the other:
 * - commit above the last recovered index: the entries it covered were in the torn part of the
 *   same batch; commit is lowered to what is there (the commit index is only a hint: the
 *   leader sends it again) and raised to the snapshot index (a snapshot holds committed state);
 * - a log entry of a later term than the hard state: the term change was in the lost hard-state
 *   write; nothing from that sync was sent, so in particular no vote in that term: take the term
 *   with no vote.
 */
export function reconcileHardState(
  hardState: HardState | null,
  snapshot: SnapshotMeta | null,
  entries: readonly Entry[],
): HardState | null {
  const last = entries.at(-1);
  const lastIndex = last?.index ?? snapshot?.index ?? 0;
  const lastTerm = last?.term ?? snapshot?.term ?? 0;
  if (hardState === null)
    return lastTerm > 0 ? { term: lastTerm, vote: null, commit: snapshot?.index ?? 0 } : null;
  const commit = Math.max(snapshot?.index ?? 0, Math.min(hardState.commit, lastIndex));
  if (lastTerm > hardState.term) return { term: lastTerm, vote: null, commit };
  if (commit !== hardState.commit) return { ...hardState, commit };
  return hardState;
}

/** One `sync()` for the log and the hard state; see src/ports/storage.ts for the contract. */
export class ComposedRaftStorage implements RaftStorage {
  readonly #parts: StorageParts;
  #failure: ConclaveError | null = null;

  constructor(parts: StorageParts) {
    this.#parts = parts;
  }

  get snapshots(): SnapshotStore {
    return this.#parts.snapshots;
  }

  async open(): Promise<RecoveredState> {
    const { log, stable, snapshots } = this.#parts;
    const hardState = await stable.open();
    const snapshot = await snapshots.open();
    const { entries } = await log.open();
    const kept = await this.#entriesAfterSnapshot(entries, snapshot);
    return { hardState: reconcileHardState(hardState, snapshot, kept), snapshot, entries: kept };
  }

  /** Drops what the snapshot covers; drops the whole log if it is from another history. */
  async #entriesAfterSnapshot(entries: Entry[], snapshot: SnapshotMeta | null): Promise<Entry[]> {
    const { log, logLocation } = this.#parts;
    const snapshotIndex = snapshot?.index ?? 0;
    const firstIndex = entries[0]?.index ?? 0;
    const atSnapshot = entries[snapshotIndex - firstIndex];
    if (snapshot !== null && atSnapshot !== undefined && atSnapshot.term !== snapshot.term) {
      // The snapshot came from a leader whose log differs from ours: Raft discards the whole log.
      await log.reset(snapshotIndex + 1);
      return [];
    }
    const kept = snapshotIndex >= firstIndex ? entries.slice(snapshotIndex - firstIndex + 1) : entries;
    const keptFirst = kept[0]?.index;
    if (keptFirst !== undefined && keptFirst !== snapshotIndex + 1) {
      throw new ConclaveError(
        "CONCLAVE_STORAGE_CORRUPT",
        `The log in ${logLocation} starts at index ${keptFirst} but the latest snapshot ends at ${snapshotIndex}: ` +
          "entries are missing. Restore this member from the others: wipe its data directory and let it rejoin.",
        { file: logLocation, firstIndex: keptFirst, snapshotIndex },
      );
    }
    if (snapshot !== null) await log.compact(snapshotIndex);
    return kept;
  }

  #assertUsable(): void {
    if (this.#failure !== null) throw this.#failure;
  }

  /** Remembers a fail-stop error from any part, so that every later call throws it. */
  async #guard<T>(operation: () => Promise<T>): Promise<T> {
    this.#assertUsable();
    try {
      return await operation();
    } catch (error) {
      if (isConclaveError(error, "CONCLAVE_STORAGE_FAILED")) this.#failure ??= error;
      throw error;
    }
  }

  append(entries: readonly Entry[]): void {
    this.#assertUsable();
    this.#parts.log.append(entries);
  }

  setHardState(hardState: HardState): void {
    this.#assertUsable();
    this.#parts.stable.setHardState(hardState);
  }

  sync(): Promise<void> {
    return this.#guard(async () => {
      // Both started before either is awaited: the two fsyncs overlap.
      const results = await Promise.allSettled([this.#parts.log.sync(), this.#parts.stable.sync()]);
      const failures = results.flatMap((result) => (result.status === "rejected" ? [result.reason] : []));
      // A fail-stop error wins over a full disk: it is the one the runtime must act on.
      const failed = failures.find((reason) => isConclaveError(reason, "CONCLAVE_STORAGE_FAILED"));
      if (failed !== undefined || failures.length > 0) throw failed ?? failures[0];
    });
  }

  compact(index: number): Promise<void> {
    return this.#guard(() => this.#parts.log.compact(index));
  }

  reset(nextIndex: number): Promise<void> {
    return this.#guard(() => this.#parts.log.reset(nextIndex));
  }

  async close(): Promise<void> {
    await this.#parts.log.close();
    await this.#parts.stable.close();
    await this.#parts.snapshots.close();
  }
}
