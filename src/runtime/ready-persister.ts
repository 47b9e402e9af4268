/**
 * Step 1 of the Ready contract: make a Ready durable. Snapshot chunks go to the snapshot store
 * (a `done` chunk finishes that snapshot; several transfers may pass through one Ready), the log
 * is reset or compacted to an installed snapshot, entries are appended, the hard state is set,
 * then ONE `sync()` covers it all (group commit). Nothing is sent before this resolves.
 */
import { assert } from "../lib/assert.ts";
import { type ConclaveError, isConclaveError } from "../lib/errors.ts";
import type { Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { RaftStorage, SnapshotWriter } from "../ports/storage.ts";
import type { Ready } from "../raft/api-types.ts";
import type { HardState, SnapshotMeta } from "../raft/types.ts";

/** How long to wait before retrying a sync that found the disk full. */
const diskFullRetryDelayMs = 1000;
/**
 * A hard state that changed only its commit index is staged at most this often. Staging it with
 * every sync cost a second synchronous disk write per sync on every member (the hard state is
 * its own file), about 10 % of write throughput; the commit index is volatile in Raft, and at
 * start the runtime takes the state machine's applied index as committed too (see
 * `committedAtStart` in raft-runtime.ts), so a stale one on disk loses nothing.
 */
export const commitOnlyStagingIntervalMs = 1000;

export class ReadyPersister {
  readonly #storage: RaftStorage;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #incoming: { meta: SnapshotMeta; writer: SnapshotWriter } | null = null;
  #stopping = false;
  /** The last hard state staged, and the last one a sync made durable (null: none yet). */
  #stagedHardState: HardState | null = null;
  #durableHardState: HardState | null = null;
  /** The core's latest hard state (staged or not yet), and when one was last staged. */
  #latestHardState: HardState | null = null;
  #stagedAtMs = Number.NEGATIVE_INFINITY;
  /** Ends the wait before the next disk-full retry (so a stop does not wait for free space). */
  #wakeRetry: (() => void) | null = null;
  readonly #onDiskFull: (error: ConclaveError | null) => void;

  /** `onDiskFull(error)` is called when a sync finds the disk full, and with null once it has room again. */
  constructor(
    storage: RaftStorage,
    clock: Clock,
    logger: Logger,
    onDiskFull: (error: ConclaveError | null) => void,
  ) {
    this.#storage = storage;
    this.#clock = clock;
    this.#logger = logger;
    this.#onDiskFull = onDiskFull;
  }

  /** Makes the Ready durable. `logKeepsSnapshot`: the core kept log entries after `ready.snapshot`. */
  async persist(ready: Ready, logKeepsSnapshot: boolean): Promise<void> {
    // Without chunks not awaited at all: the log write below starts before this yields (SerialQueue).
    if (ready.snapshotChunks.length > 0) await this.#writeSnapshotChunks(ready);
    const snapshot = ready.snapshot;
    if (snapshot !== null) {
      const latest = this.#storage.snapshots.latest();
      assert(
        latest !== null && latest.index === snapshot.index && latest.term === snapshot.term,
        () => `snapshot ${snapshot.term}-${snapshot.index} to install is not the newest stored`,
      );
      // The core keeps entries after the snapshot only if its log holds the snapshot's last entry.
      if (logKeepsSnapshot) await this.#storage.compact(snapshot.index);
      else await this.#storage.reset(snapshot.index + 1);
    }
    if (ready.entries.length > 0) this.#storage.append(ready.entries);
    this.#stageHardState(ready.hardState);
    // A hard state that changed only its commit index needs no sync of its own (as etcd's
    // MustSync): the commit index is volatile in Raft — after a crash it is learned again from
    // the leader, and the state machine never re-applies (it records its own applied index). It
    // is written with a later sync. Term and vote must be durable before any message says so.
    const durable = this.#durableHardState;
    const staged = this.#stagedHardState;
    const hardStateMustSync =
      staged !== null && (durable === null || staged.term !== durable.term || staged.vote !== durable.vote);
    const needsSync = ready.entries.length > 0 || hardStateMustSync || snapshot !== null;
    if (needsSync) {
      await this.#syncRetryingWhileFull();
      this.#durableHardState = this.#stagedHardState;
    }
  }

  /**
   * Stages the core's hard state when its term or vote changed, or when only the commit index
   * changed and the last staging is {@link commitOnlyStagingIntervalMs} old.
   */
  #stageHardState(fromReady: HardState | null): void {
    if (fromReady !== null) this.#latestHardState = fromReady;
    const latest = this.#latestHardState;
    const staged = this.#stagedHardState;
    if (latest === null || latest === staged) return;
    const termOrVoteChanged = staged === null || latest.term !== staged.term || latest.vote !== staged.vote;
    const now = this.#clock.now();
    if (!termOrVoteChanged && now - this.#stagedAtMs < commitOnlyStagingIntervalMs) return;
    this.#storage.setHardState(latest);
    this.#stagedHardState = latest;
    this.#stagedAtMs = now;
  }

  /** Makes a pending disk-full retry give up (the node is stopping). */
  stop(): void {
    this.#stopping = true;
    this.#wakeRetry?.();
  }

  /** Drops an unfinished incoming snapshot (at stop). */
  async abortIncoming(): Promise<void> {
    const incoming = this.#incoming;
    this.#incoming = null;
    await incoming?.writer.abort();
  }

  async #writeSnapshotChunks(ready: Ready): Promise<void> {
    for (const chunk of ready.snapshotChunks) {
      if (chunk.offset === 0) {
        await this.abortIncoming(); // a transfer restarted, or a newer snapshot replaced it
        // Starting the file can find the disk full too (a store that writes a header, no inode
        // left): it waits for room like the chunks, instead of stopping the node.
        const writer = await this.#retryWhileFull(() => this.#storage.snapshots.begin(chunk.meta));
        this.#incoming = { meta: chunk.meta, writer };
      }
      const incoming = this.#incoming;
      assert(
        incoming !== null &&
          incoming.meta.index === chunk.meta.index &&
          incoming.meta.term === chunk.meta.term,
        () =>
          `snapshot chunk at offset ${chunk.offset} of ${chunk.meta.term}-${chunk.meta.index} without its start`,
      );
      // A full disk keeps this Ready in hand, as for the log: the writer kept everything before
      // this chunk, and the chunk (or the finish) is tried again once there is room.
      await this.#retryWhileFull(() => incoming.writer.write(chunk.data));
      if (chunk.done) {
        await this.#retryWhileFull(() => incoming.writer.finish());
        this.#incoming = null;
      }
    }
  }

  /**
   * A full disk is not fail-stop: what is staged stays staged and a later sync writes it. The
   * Ready stays in hand (nothing sent, nothing acknowledged) and new input queues meanwhile.
   */
  async #syncRetryingWhileFull(): Promise<void> {
    await this.#retryWhileFull(() => this.#storage.sync());
  }

  /** Runs a write, again every second while it finds the disk full (reported meanwhile). */
  async #retryWhileFull<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const written = await write();
        if (attempt > 1) {
          this.#logger.info({ attempts: attempt }, "disk space available again; write done");
          this.#onDiskFull(null);
        }
        return written;
      } catch (error) {
        if (!isConclaveError(error, "CONCLAVE_DISK_FULL") || this.#stopping) throw error;
        if (attempt === 1) this.#onDiskFull(error);
        if (attempt === 1 || attempt % 60 === 0) {
          this.#logger.error({ code: error.code, attempts: attempt }, error.message);
        }
        await new Promise<void>((resolve) => {
          const timer = this.#clock.setTimer(resolve, diskFullRetryDelayMs);
          this.#wakeRetry = () => {
            timer.cancel();
            resolve();
          };
        });
        this.#wakeRetry = null;
        if (this.#stopping) throw error; // stopping: the Ready in hand is dropped, nothing was sent
      }
    }
  }
}
