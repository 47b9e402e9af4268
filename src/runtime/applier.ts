/**
 * Step 3 of the Ready contract and the snapshots of the state machine: restores an installed
 * snapshot, applies committed entries in order (resolving the proposals waiting on them), and
 * says when a snapshot is due — every `snapshotEveryEntries` applied entries, or sooner once the
 * entries applied since the last one hold `snapshotEveryBytes` — then writes it so that the log
 * can be compacted.
 *
 * It tracks the term and membership as of the last applied entry itself, so that a snapshot's
 * metadata needs nothing from the core's internals.
 */
import { assert } from "../lib/assert.ts";
import type { StateMachine, StateMachineSnapshot } from "../ports/state-machine.ts";
import type { SnapshotStore } from "../ports/storage.ts";
import type { Entry, Membership, SnapshotMeta } from "../raft/types.ts";
import type { ProposalTable } from "./pending-calls.ts";

/** Bytes read from the snapshot store per chunk while restoring. */
const restoreChunkBytes = 1024 * 1024;

export interface AppliedPoint {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
}

export class Applier {
  readonly #machine: StateMachine;
  readonly #snapshots: SnapshotStore;
  readonly #proposals: ProposalTable;
  #point: AppliedPoint;
  #lastSnapshotIndex: number;
  /** Command bytes applied since start, and that count at the last snapshot's index. */
  #appliedBytes = 0;
  #appliedBytesAtSnapshot = 0;
  /** Index of the last command entry applied: the state machine's own applied index. */
  #lastCommandIndex: number;
  /**
   * The point right after the last command applied (where the state machine's applied index
   * is), or null when not known (config entries followed it before a start or a restore):
   * what a snapshot mark describes.
   */
  #lastCommandPoint: AppliedPoint | null;
  /** While a background snapshot is copied: every point applied since it began (see takeSnapshot). */
  #recording: RecordedPoint[] | null = null;

  constructor(
    machine: StateMachine,
    snapshots: SnapshotStore,
    proposals: ProposalTable,
    start: { point: AppliedPoint; lastSnapshotIndex: number },
  ) {
    this.#machine = machine;
    this.#snapshots = snapshots;
    this.#proposals = proposals;
    this.#point = start.point;
    this.#lastSnapshotIndex = start.lastSnapshotIndex;
    this.#lastCommandIndex = machine.appliedIndex ?? start.point.index;
    this.#lastCommandPoint = this.#lastCommandIndex === start.point.index ? start.point : null;
  }

  /** True when the state machine keeps its own state durable (StateMachine.checkpoint): snapshots are marks. */
  get takesMarks(): boolean {
    return this.#machine.checkpoint !== undefined;
  }

  get appliedIndex(): number {
    return this.#point.index;
  }

  /** Replaces the state machine's state with a stored snapshot. */
  async restore(meta: SnapshotMeta): Promise<void> {
    const snapshots = this.#snapshots;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let offset = 0; offset < meta.sizeBytes; ) {
        const chunk = snapshots.read(meta, offset, restoreChunkBytes);
        assert(chunk.byteLength > 0, () => `snapshot ${meta.term}-${meta.index} ends early at ${offset}`);
        offset += chunk.byteLength;
        yield chunk;
      }
    }
    await this.#machine.restore(chunks(), meta.sizeBytes);
    this.#point = { index: meta.index, term: meta.term, membership: meta.membership };
    this.#lastCommandIndex = this.#machine.appliedIndex ?? meta.index;
    this.#lastCommandPoint = this.#lastCommandIndex === meta.index ? this.#point : null;
    this.#lastSnapshotIndex = Math.max(this.#lastSnapshotIndex, meta.index);
    this.#appliedBytesAtSnapshot = this.#appliedBytes;
    this.#record();
  }

  /** Applies one committed entry (the next in order) and settles the proposal waiting on it. */
  apply(entry: Entry): void {
    assert(
      entry.index === this.#point.index + 1,
      () => `applying entry ${entry.index} after ${this.#point.index}: out of order`,
    );
    let result: unknown;
    let membership = this.#point.membership;
    if (entry.kind === "command") {
      result = this.#machine.apply(entry.data, entry.index);
      this.#lastCommandIndex = entry.index;
      this.#appliedBytes += entry.data.byteLength;
    } else if (entry.kind === "config") membership = entry.membership;
    this.#point = { index: entry.index, term: entry.term, membership };
    if (entry.kind === "command") this.#lastCommandPoint = this.#point;
    this.#record();
    this.#proposals.applied(entry.index, entry.term, result);
  }

  /** Applies a batch of committed entries in order, inside the state machine's batch (if it has one). */
  applyAll(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.#machine.beginBatch?.();
    try {
      for (const entry of entries) this.apply(entry);
    } finally {
      this.#machine.endBatch?.();
    }
  }

  /** Lets a state machine that defers its commits commit what is due (StateMachine.flushIfDue). */
  flushIfDue(): void {
    this.#machine.flushIfDue?.();
  }

  /**
   * True when enough entries, or enough bytes of commands, were applied since the last snapshot
   * to take a new one. The log holds every entry since the last snapshot in memory, so the
   * byte bound is what keeps a node's memory bounded when values are large (1 MB values
   * reached 700 MB per node after 600 puts with the entry count alone).
   */
  snapshotDue(everyEntries: number, everyBytes = Number.POSITIVE_INFINITY): boolean {
    if (this.#point.index <= this.#lastSnapshotIndex) return false;
    return (
      this.#point.index - this.#lastSnapshotIndex >= everyEntries ||
      this.#appliedBytes - this.#appliedBytesAtSnapshot >= everyBytes
    );
  }

  #record(): void {
    this.#recording?.push({
      point: this.#point,
      commandIndex: this.#lastCommandIndex,
      appliedBytes: this.#appliedBytes,
    });
  }

  /**
   * Writes a snapshot of the state machine and returns its metadata. With `snapshotInBackground`
   * the copy is made while entries keep being applied, and it says which index it holds: its
   * term and membership are those of the latest point applied meanwhile whose last command is
   * that index (entries after it, if any, were configuration entries, which leave the state
   * machine as it was). Without it, the copy is of the last applied entry, made now.
   */
  async takeSnapshot(use: SnapshotUse = "compaction"): Promise<SnapshotMeta> {
    if (this.#machine.snapshotInBackground === undefined) {
      return this.#write(this.#point, this.#machine.snapshot(), this.#appliedBytes, use);
    }
    const recording: RecordedPoint[] = [];
    this.#recording = recording;
    this.#record();
    let copy: StateMachineSnapshot & { readonly index: number };
    try {
      copy = await this.#machine.snapshotInBackground();
    } finally {
      this.#recording = null;
    }
    const at = recording.findLast((recorded) => recorded.commandIndex === copy.index);
    assert(
      at !== undefined,
      () => `the background snapshot holds index ${copy.index}, which was not applied while it was taken`,
    );
    return this.#write(at.point, copy, at.appliedBytes, use);
  }

  /**
   * Takes a snapshot mark: the state machine makes what it applied durable
   * (StateMachine.checkpoint), and the mark describing that point is stored, with no data. Null
   * when no command was applied since the last snapshot (nothing to mark). The point is read
   * before the checkpoint's sync: applies go on meanwhile, and the state machine holds at least
   * that point once the sync is done.
   */
  async takeMark(): Promise<SnapshotMeta | null> {
    const checkpoint = this.#machine.checkpoint;
    assert(checkpoint !== undefined, "a snapshot mark needs a state machine that checkpoints");
    const point = this.#lastCommandPoint;
    if (point === null || point.index <= this.#lastSnapshotIndex) return null;
    const appliedBytes = this.#appliedBytes;
    const durable = await checkpoint.call(this.#machine);
    assert(durable >= point.index, () => `checkpoint holds ${durable}, before the applied ${point.index}`);
    return this.#write(point, { sizeBytes: 0, chunks: noChunks() }, appliedBytes, "mark");
  }

  async #write(
    point: AppliedPoint,
    { sizeBytes, chunks, file }: StateMachineSnapshot,
    appliedBytesAtPoint: number,
    use: SnapshotUse | "mark",
  ): Promise<SnapshotMeta> {
    const meta: SnapshotMeta = {
      index: point.index,
      term: point.term,
      membership: point.membership,
      sizeBytes,
      ...(use === "mark" ? { inStateMachine: true as const } : {}),
    };
    if (file !== undefined && this.#snapshots.adopt !== undefined) {
      // The state machine's copy becomes the snapshot without being copied again (a database of
      // a few hundred MB was written twice and read twice per snapshot).
      await this.#snapshots.adopt(meta, file);
    } else {
      const writer = await this.#snapshots.begin(meta);
      try {
        for await (const chunk of chunks) await writer.write(chunk);
        await writer.finish();
      } catch (error) {
        await writer.abort();
        throw error;
      }
    }
    // A snapshot installed from the leader while this one was written may be newer. A copy for a
    // follower compacts nothing, so the next snapshot is due as before.
    if (use !== "transfer" && point.index > this.#lastSnapshotIndex) {
      this.#lastSnapshotIndex = point.index;
      this.#appliedBytesAtSnapshot = appliedBytesAtPoint;
    }
    return meta;
  }
}

/**
 * What a copy is for: compacting the log (state machines without checkpoint), or sending to a
 * follower (with checkpoint: the log is compacted against marks).
 */
export type SnapshotUse = "compaction" | "transfer";

async function* noChunks(): AsyncGenerator<Uint8Array> {}

/** A point applied while a background snapshot was copied, with the last command index at it. */
interface RecordedPoint {
  readonly point: AppliedPoint;
  readonly commandIndex: number;
  /** The applier's count of command bytes applied, at this point. */
  readonly appliedBytes: number;
}

/** Where the state machine stands at start: after the snapshot, or at its own persisted index. */
export function appliedPointAtStart(
  snapshot: SnapshotMeta | null,
  entries: readonly Entry[],
  appliedIndex: number,
): AppliedPoint {
  let point: AppliedPoint = snapshot
    ? { index: snapshot.index, term: snapshot.term, membership: snapshot.membership }
    : { index: 0, term: 0, membership: { voters: [], learners: [] } };
  for (const entry of entries) {
    if (entry.index > appliedIndex) break;
    if (entry.index <= point.index) continue;
    const membership = entry.kind === "config" ? entry.membership : point.membership;
    point = { index: entry.index, term: entry.term, membership };
  }
  return point;
}
