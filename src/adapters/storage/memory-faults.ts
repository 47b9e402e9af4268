/**
 * Disk faults for the in-memory stores, with the same codes and the same fail-stop behaviour as
 * the file stores, so the simulator can exercise the runtime's handling of them.
 */
import { ConclaveError } from "../../lib/errors.ts";

/** `io-error`: the store fails for good (as after a failed fsync). `disk-full`: this sync only. */
export type StorageFault = "io-error" | "disk-full";

export class MemoryFaults {
  readonly #storeName: string;
  #failure: ConclaveError | null = null;
  #injected: StorageFault | null = null;

  constructor(storeName: string) {
    this.#storeName = storeName;
  }

  assertUsable(): void {
    if (this.#failure !== null) throw this.#failure;
  }

  inject(fault: StorageFault): void {
    this.#injected = fault;
  }

  /** Throws the injected fault, if any (once). Called at the start of a sync. */
  takeInjected(): void {
    const fault = this.#injected;
    this.#injected = null;
    if (fault === "io-error") {
      this.#failure = new ConclaveError(
        "CONCLAVE_STORAGE_FAILED",
        `fsync of the ${this.#storeName} failed (EIO, injected); the node stops to protect your data; check the disk.`,
        { store: this.#storeName, errno: "EIO" },
      );
      throw this.#failure;
    }
    if (fault === "disk-full") {
      throw new ConclaveError(
        "CONCLAVE_DISK_FULL",
        `The disk holding the ${this.#storeName} is full (injected); free space and the node continues.`,
        { store: this.#storeName },
      );
    }
  }
}
