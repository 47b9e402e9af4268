/**
 * The in-memory twin of the file log, for the simulator and tests. It keeps a "durable" copy that
 * only `sync` updates; `crash()` throws away everything not synced, as a power cut would.
 * `injectFault` makes the next sync fail the way a disk can (fail-stop I/O error, full disk).
 */
import { assert } from "../../lib/assert.ts";
import type { LogRecovery, LogStore } from "../../ports/storage.ts";
import type { Entry } from "../../raft/types.ts";
import { MemoryFaults, type StorageFault } from "./memory-faults.ts";

/** {@link LogStore} in memory. The object itself is the "disk": reopen it after `crash()`. */
export class MemoryLogStore implements LogStore {
  /** Entries as the runtime sees them, from index #startIndex. */
  #current: Entry[] = [];
  /** Entries that survive a crash, also from index #startIndex (a prefix-aligned copy). */
  #durable: Entry[] = [];
  #startIndex = 1;
  /** Lowest index changed since the last sync, or null. */
  #dirtyFrom: number | null = null;
  #opened = false;
  readonly #faults = new MemoryFaults("memory log");

  async open(): Promise<LogRecovery> {
    assert(!this.#opened, "MemoryLogStore.open called twice without crash() or close()");
    this.#faults.assertUsable();
    this.#current = this.#durable.slice();
    this.#dirtyFrom = null;
    this.#opened = true;
    return { entries: this.#durable.slice() };
  }

  lastIndex(): number {
    return this.#startIndex + this.#current.length - 1;
  }

  append(entries: readonly Entry[]): void {
    this.#faults.assertUsable();
    assert(this.#opened, "MemoryLogStore.append before open");
    const first = entries[0];
    if (first === undefined) return;
    assert(
      first.index >= this.#startIndex,
      () => `append at ${first.index} below the log start ${this.#startIndex}`,
    );
    assert(
      first.index <= this.lastIndex() + 1,
      () => `append at ${first.index} leaves a gap after ${this.lastIndex()}`,
    );
    let previousTerm = this.#current[first.index - 1 - this.#startIndex]?.term ?? 0;
    for (const [offset, entry] of entries.entries()) {
      assert(entry.index === first.index + offset, () => `entry ${entry.index} is not consecutive`);
      assert(
        entry.term >= previousTerm,
        () => `entry ${entry.index} has term ${entry.term} < ${previousTerm}`,
      );
      previousTerm = entry.term;
    }
    this.#current.length = first.index - this.#startIndex;
    this.#current.push(...entries);
    this.#dirtyFrom = Math.min(this.#dirtyFrom ?? first.index, first.index);
  }

  async sync(): Promise<void> {
    this.#faults.assertUsable();
    this.#faults.takeInjected();
    if (this.#dirtyFrom === null) return;
    const keep = Math.max(0, Math.min(this.#durable.length, this.#dirtyFrom - this.#startIndex));
    this.#durable.length = keep;
    this.#durable.push(...this.#current.slice(keep));
    this.#dirtyFrom = null;
  }

  async compact(index: number): Promise<void> {
    this.#faults.assertUsable();
    if (index >= this.lastIndex()) {
      this.#dropEverything(index + 1);
      return;
    }
    if (index < this.#startIndex) return;
    // Deleting files is immediate on a real disk too, so the durable copy loses them at once.
    const dropped = index + 1 - this.#startIndex;
    this.#current.splice(0, dropped);
    this.#durable.splice(0, Math.min(dropped, this.#durable.length));
    this.#startIndex = index + 1;
  }

  async reset(nextIndex: number): Promise<void> {
    this.#faults.assertUsable();
    this.#dropEverything(nextIndex);
  }

  #dropEverything(nextIndex: number): void {
    this.#current = [];
    this.#durable = [];
    this.#startIndex = nextIndex;
    this.#dirtyFrom = null;
  }

  async close(): Promise<void> {
    this.crash();
  }

  /** Loses everything not synced; the store can be opened again. */
  crash(): void {
    this.#current = this.#durable.slice();
    this.#dirtyFrom = null;
    this.#opened = false;
  }

  /** The next sync fails with `fault` (an I/O error fails the store for good, as on disk). */
  injectFault(fault: StorageFault): void {
    this.#faults.inject(fault);
  }
}
