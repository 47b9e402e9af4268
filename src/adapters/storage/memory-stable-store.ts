/**
 * The in-memory twin of the hard-state file: `sync` makes the staged hard state durable,
 * `crash()` drops what was staged since.
 */
import { assert } from "../../lib/assert.ts";
import type { StableStore } from "../../ports/storage.ts";
import type { HardState } from "../../raft/types.ts";
import { MemoryFaults, type StorageFault } from "./memory-faults.ts";

/** {@link StableStore} in memory. The object itself is the "disk": reopen it after `crash()`. */
export class MemoryStableStore implements StableStore {
  #durable: HardState | null = null;
  #pending: HardState | null = null;
  #opened = false;
  readonly #faults = new MemoryFaults("memory hard state");

  async open(): Promise<HardState | null> {
    assert(!this.#opened, "MemoryStableStore.open called twice without crash() or close()");
    this.#faults.assertUsable();
    this.#opened = true;
    return this.#durable;
  }

  setHardState(hardState: HardState): void {
    this.#faults.assertUsable();
    assert(this.#opened, "MemoryStableStore.setHardState before open");
    this.#pending = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  }

  async sync(): Promise<void> {
    this.#faults.assertUsable();
    this.#faults.takeInjected();
    if (this.#pending !== null) this.#durable = this.#pending;
    this.#pending = null;
  }

  async close(): Promise<void> {
    this.crash();
  }

  /** Loses the staged hard state; the store can be opened again. */
  crash(): void {
    this.#pending = null;
    this.#opened = false;
  }

  /** The next sync fails with `fault`. */
  injectFault(fault: StorageFault): void {
    this.#faults.inject(fault);
  }
}
