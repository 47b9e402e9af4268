/**
 * A fixed-bucket histogram of observed values (latencies in seconds, for the metrics): counts per
 * bucket, sum and count, in the shape Prometheus exposes. Observing is a bucket search and three
 * additions; nothing is allocated.
 *
 * @example
 * ```ts
 * const latency = new Histogram([0.001, 0.01, 0.1]);
 * latency.observe(0.004);
 * latency.snapshot(); // { bounds: [0.001, 0.01, 0.1], buckets: [0, 1, 0, 0], sum: 0.004, count: 1 }
 * ```
 */
export interface HistogramSnapshot {
  /** The histogram's upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); one more slot than the bounds, for those above every bound. */
  readonly buckets: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export class Histogram {
  /** Upper bounds, ascending: an observation goes to the first bound it does not exceed. */
  readonly bounds: readonly number[];
  readonly #buckets: number[];
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.#buckets = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let at = 0;
    while (at < this.bounds.length && value > (this.bounds[at] ?? 0)) at++;
    this.#buckets[at] = (this.#buckets[at] ?? 0) + 1;
    this.#sum += value;
    this.#count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, buckets: [...this.#buckets], sum: this.#sum, count: this.#count };
  }
}
