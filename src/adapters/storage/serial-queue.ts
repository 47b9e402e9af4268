/**
 * Runs asynchronous operations one at a time, in call order. A failed operation does not stop
 * the ones queued after it (each caller gets its own result).
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(operation, operation);
    // The queue only needs to know when the operation settled, not how.
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
