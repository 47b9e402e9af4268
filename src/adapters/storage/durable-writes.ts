/**
 * Counts the storage's durable writes — O_DSYNC writes of the log and the hard state, and explicit
 * fsyncs — with their bytes and how long each took, for `GET /v1/metrics`
 * (`conclave_storage_durable_write_*`). The log's write is the one a write request waits for,
 * so its latency histogram is the first thing to read when writes are slow (etcd's
 * `etcd_disk_wal_fsync_duration_seconds` plays the same part).
 */

/** Upper bounds (seconds) of the latency buckets: 0.25 ms doubling to ~8 s, as etcd's WAL fsync histogram. */
export const durableWriteBucketsSeconds: readonly number[] = Array.from(
  { length: 16 },
  (_, i) => 0.00025 * 2 ** i,
);

export interface DurableWriteSnapshot {
  readonly count: number;
  readonly bytes: number;
  readonly seconds: number;
  /** Writes per bucket of `durableWriteBucketsSeconds` (not cumulative); the last slot is above every bound. */
  readonly buckets: readonly number[];
}

export class DurableWrites {
  #count = 0;
  #bytes = 0;
  #seconds = 0;
  readonly #buckets = new Array<number>(durableWriteBucketsSeconds.length + 1).fill(0);

  /** One durable write (or fsync, `bytes` 0) that took `seconds`. */
  record(bytes: number, seconds: number): void {
    this.#count++;
    this.#bytes += bytes;
    this.#seconds += seconds;
    let at = 0;
    while (at < durableWriteBucketsSeconds.length && seconds > (durableWriteBucketsSeconds[at] ?? 0)) at++;
    this.#buckets[at] = (this.#buckets[at] ?? 0) + 1;
  }

  snapshot(): DurableWriteSnapshot {
    return { count: this.#count, bytes: this.#bytes, seconds: this.#seconds, buckets: [...this.#buckets] };
  }
}
