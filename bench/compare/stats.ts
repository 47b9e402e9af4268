/**
 * Pure statistics for the comparison: percentiles by the nearest-rank rule (the same rule as the
 * etcd harness's `pct`, so figures are computed the same way for both systems), medians across
 * runs, and rounding.
 */

/** The p-th percentile (0–100) of ascending `sorted` values, nearest rank; null when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  const index = Math.min(sorted.length - 1, Math.max(0, rank));
  return sorted[index] ?? null;
}

/** The median of `values` (lower middle for an even count, as the etcd harness reports); null when empty. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? null;
}

/** `value` rounded to `digits` decimals; null stays null. */
export function round(value: number | null, digits = 2): number | null {
  if (value === null || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Latency summary of one load test, in milliseconds. */
export interface LatencySummary {
  readonly p50Ms: number | null;
  readonly p90Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  readonly meanMs: number | null;
}

/** Summarises request latencies; NaN entries (failed requests) are left out. */
export function summariseLatencies(latenciesMs: ArrayLike<number>): LatencySummary {
  const finite = Array.from(latenciesMs).filter((x) => Number.isFinite(x));
  const sorted = Float64Array.from(finite).sort();
  const sum = finite.reduce((total, x) => total + x, 0);
  return {
    p50Ms: round(percentile(sorted, 50), 3),
    p90Ms: round(percentile(sorted, 90), 3),
    p99Ms: round(percentile(sorted, 99), 3),
    maxMs: round(sorted.length === 0 ? null : (sorted[sorted.length - 1] ?? null), 3),
    meanMs: round(sorted.length === 0 ? null : sum / sorted.length, 3),
  };
}

/** Smallest, median and largest of `values` (nulls left out); all null when none remain. */
export function spread(values: readonly (number | null)[]): {
  min: number | null;
  median: number | null;
  max: number | null;
} {
  const present = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (present.length === 0) return { min: null, median: null, max: null };
  return { min: Math.min(...present), median: median(present), max: Math.max(...present) };
}
