/**
 * Counts the storage's durable writes — O_DSYNC writes of the log and the hard state, and explicit
 * fsyncs — with their bytes and how long each took, for `GET /v1/metrics`
 * (`conclave_storage_durable_write_*`). The log's write is the one a write request waits for,
 * so its latency histogram is the first thing to read when writes are slow (etcd's
 * `etcd_disk_wal_fsync_duration_seconds` plays the same part).
 */
import { Histogram, type HistogramSnapshot } from "../../lib/histogram.ts";

/** Upper bounds (seconds) of the latency buckets: 0.25 ms doubling to ~8 s, as etcd's WAL fsync histogram. */
export const durableWriteBucketsSeconds: readonly number[] = Array.from(
  { length: 16 },
  (_, i) => 0.00025 * 2 ** i,
);

export interface DurableWriteSnapshot {
  readonly bytes: number;
  /** Seconds per write; its count is the number of durable writes. */
  readonly seconds: HistogramSnapshot;
}

export class DurableWrites {
  #bytes = 0;
  readonly #seconds = new Histogram(durableWriteBucketsSeconds);

  /** One durable write (or fsync, `bytes` 0) that took `seconds`. */
  record(bytes: number, seconds: number): void {
    this.#bytes += bytes;
    this.#seconds.observe(seconds);
  }

  snapshot(): DurableWriteSnapshot {
    return { bytes: this.#bytes, seconds: this.#seconds.snapshot() };
  }
}
