/**
 * The state machine port: what the runtime applies committed commands to.
 *
 * Contract:
 * - `apply` is deterministic: the same commands in the same order give the same state and the
 *   same results on every member. It is called once per committed command entry, in log order,
 *   never concurrently with `snapshot` or `restore`. It must not throw for a bad command (a
 *   command is already committed: answer it with an error *result*); a throw is a bug and stops
 *   the node (fail-stop).
 * - `snapshot()` captures the state as of the last applied command: later `apply` calls must not
 *   change what its `chunks` yield. `sizeBytes` is known up front (the snapshot store and the
 *   leader's chunked transfer need it).
 * - `restore` replaces the whole state with a snapshot's bytes (from this node or the leader).
 * - `appliedIndex`: a state machine that persists itself (SQLite) reports the last index it
 *   applied, so that a restart does not apply entries twice; an in-memory one omits it and is
 *   rebuilt from the latest snapshot plus the log.
 *
 * @example
 * ```ts
 * const result = machine.apply(entry.data, entry.index); // e.g. { op: "put" }
 * const { sizeBytes, chunks } = machine.snapshot();
 * for await (const chunk of chunks) await writer.write(chunk);
 * ```
 */

/** A point-in-time snapshot of a state machine. */
export interface StateMachineSnapshot {
  /** Total bytes `chunks` yields. */
  readonly sizeBytes: number;
  readonly chunks: AsyncIterable<Uint8Array>;
  /**
   * Optional: a file that holds exactly these bytes and may be handed to the snapshot store
   * instead of reading `chunks` (which are then never read; the store takes the file over).
   */
  readonly file?: string;
}

/** A deterministic, replicated state machine. See the module comment for the contract. */
export interface StateMachine {
  /** Applies one committed command and returns its result (handed to the proposer). */
  apply(data: Uint8Array, index: number): unknown;
  /** Captures the current state (see the contract above). */
  snapshot(): StateMachineSnapshot;
  /**
   * Optional: captures the state without holding up `apply` (a large database takes seconds to
   * copy). Applies may go on meanwhile, so the copy holds the state as of some index at or after
   * the one applied when this was called; it says which. The runtime uses it when present.
   */
  snapshotInBackground?(): Promise<StateMachineSnapshot & { readonly index: number }>;
  /** Replaces the whole state with the snapshot's bytes. */
  restore(chunks: AsyncIterable<Uint8Array>, sizeBytes: number): Promise<void>;
  /**
   * Optional batching: the runtime calls `beginBatch()` before a batch of committed entries and
   * `endBatch()` right after it, in the same turn (before any caller sees a result), so a
   * persistent state machine may make the batch durable at once instead of entry by entry.
   */
  beginBatch?(): void;
  endBatch?(): void;
  /**
   * Optional, for a persistent state machine that keeps batches uncommitted for a while after
   * `endBatch` (the log is the durable record; after a crash it applies them again from its
   * persisted `appliedIndex`): commits them once they are old enough. The runtime calls it on
   * every turn of its loop, idle ticks included. A throw is a storage failure (fail-stop).
   */
  flushIfDue?(): void;
  /**
   * Optional, for a state machine that persists itself: makes every command applied so far
   * durable (committed and synced) and returns the index it then holds (its `appliedIndex` at
   * the call). With it the runtime compacts the log against a snapshot mark — a description of
   * that point, no copy — and copies the state machine only when a follower needs a snapshot:
   * copying a database of a few hundred MB every 8,192 writes was most of a node's disk traffic.
   * A throw is a storage failure (fail-stop).
   */
  checkpoint?(): Promise<number>;
  /** The last applied index, when the state machine persists itself; otherwise undefined. */
  readonly appliedIndex?: number | undefined;
}
