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
  #tail: Promise<unknown> = Promise.resolve();
  /** Operations started or waiting, and not yet settled. */
  #unsettled = 0;

  run<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#unsettled === 0 ? startNow(operation) : this.#tail.then(operation, operation);
    this.#unsettled += 1;
    // The queue only needs to know when the operation settled, not how.
    this.#tail = result.then(
      () => {
        this.#unsettled -= 1;
      },
      () => {
        this.#unsettled -= 1;
      },
    );
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
