/**
 * Runs asynchronous operations one at a time, in call order. A failed operation does not stop
 * the ones queued after it (each caller gets its own result).
 *
 * An operation called while the queue is idle starts at once, inside `run`, not a microtask
 * later: the runtime's log write is then handed to the thread pool before the code that asked
 * for it yields, i.e. before the transport writes the leader's appends to its followers (whose
 * processes, woken, would otherwise take the CPU before the leader's own write has started).
 */
export class SerialQueue {
  /** Settles (never rejects) once the last operation queued so far settled. */
  #tail: Promise<void> = Promise.resolve();
  /** Operations started or waiting, and not yet settled. */
  #unsettled = 0;

  run<T>(operation: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    const idle = this.#unsettled === 0;
    let release = (): void => {};
    // The tail moves before the operation starts, so one queued from inside it waits for it.
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#unsettled += 1;
    const result = idle ? startNow(operation) : previous.then(operation, operation);
    // The queue only needs to know when the operation settled, not how.
    const settled = (): void => {
      this.#unsettled -= 1;
      release();
    };
    result.then(settled, settled);
    return result;
  }
}

function startNow<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return operation();
  } catch (error) {
    return Promise.reject(error);
  }
}
