/**
 * Closed-loop load (as the etcd harness): N workers, each issues its next request when the
 * previous one returned; latency = each request's wall time in the client. Every load test is
 * bounded by an op count and a wall-clock cap (workers stop taking new ops after the cap).
 */
import type { DurableCounters } from "./cluster.ts";
import {
  type CostDelta,
  type CostSeconds,
  costDeltaOf,
  costSecondsBetween,
  costSnapshot,
  sumCostSeconds,
} from "./proc-stats.ts";
import { type LatencySummary, round, summariseLatencies } from "./stats.ts";

/** What one closed loop did. */
export interface LoopOutcome {
  readonly latenciesMs: Float64Array;
  readonly started: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly wallSeconds: number;
}

/**
 * Runs `op(i)` for i = 0..total-1 with `concurrency` in flight, stopping new ops after
 * `wallMsMax` or once `shouldStop()` says so.
 */
export async function closedLoop(
  total: number,
  concurrency: number,
  wallMsMax: number,
  op: (index: number) => Promise<unknown>,
  shouldStop: () => boolean = () => false,
): Promise<LoopOutcome> {
  const latenciesMs = new Float64Array(total).fill(Number.NaN);
  let next = 0;
  let errors = 0;
  let firstError: string | null = null;
  const startMs = performance.now();
  const deadlineMs = startMs + wallMsMax;
  const worker = async (): Promise<void> => {
    while (next < total && performance.now() < deadlineMs && !shouldStop()) {
      const index = next++;
      const sentMs = performance.now();
      try {
        await op(index);
        latenciesMs[index] = performance.now() - sentMs;
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const wallSeconds = (performance.now() - startMs) / 1000;
  return { latenciesMs: latenciesMs.subarray(0, next), started: next, errors, firstError, wallSeconds };
}

/** One load test's figures on one system. */
export interface LoadResult {
  readonly ops: number;
  readonly concurrency: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly wallSeconds: number | null;
  readonly opsPerSecond: number | null;
  readonly latency: LatencySummary;
  readonly cost: CostDelta;
  /** Server write_bytes divided by acknowledged payload bytes; null for reads. */
  readonly diskBytesPerPayloadByte: number | null;
  /** Durable writes (fsyncs) on all members per acknowledged write, from their metrics; null when not scraped. */
  readonly durableWritesPerOp?: number | null;
  /** Log bytes written durably on all members per payload byte, from their metrics; null when not scraped. */
  readonly durableBytesPerPayloadByte?: number | null;
}

/** A load test: `op` timed after `warmupOps` untimed ops of `warmOp` at the same concurrency. */
export interface LoadSpec {
  readonly total: number;
  readonly concurrency: number;
  readonly wallMsMax: number;
  readonly warmupOps: number;
  readonly op: (index: number) => Promise<unknown>;
  readonly warmOp: (index: number) => Promise<unknown>;
  /** Payload bytes each successful op writes (0 for reads). */
  readonly payloadBytesPerOp: number;
}

/**
 * One timed stretch of a load test on one system, raw enough to be summed with the other
 * stretches of the same test (`--slices`: a test measured in slices, A B B A …, within a run).
 */
export interface LoadSample {
  readonly outcome: LoopOutcome;
  readonly cost: CostSeconds;
  /** Durable writes and log bytes on all members during the timed ops; null when not scraped. */
  readonly durable: { readonly writes: number; readonly bytes: number } | null;
}

/**
 * Runs a load test against servers `serverPids()` and measures its cost; `durableCounters`, when
 * given, is read before and after the timed ops (writes: fsyncs and log bytes per write).
 */
export async function measureLoad(
  spec: LoadSpec,
  serverPids: () => number[],
  durableCounters?: () => Promise<DurableCounters | null>,
): Promise<LoadSample> {
  if (spec.warmupOps > 0) await closedLoop(spec.warmupOps, spec.concurrency, spec.wallMsMax, spec.warmOp);
  const pids = serverPids();
  const durableBefore = (await durableCounters?.()) ?? null;
  const before = costSnapshot(pids);
  const outcome = await closedLoop(spec.total, spec.concurrency, spec.wallMsMax, spec.op);
  const cost = costSecondsBetween(before, costSnapshot(pids));
  const durableAfter = durableBefore === null ? null : ((await durableCounters?.()) ?? null);
  const durable =
    durableBefore !== null && durableAfter !== null
      ? {
          writes: durableAfter.writes - durableBefore.writes,
          bytes: durableAfter.bytes - durableBefore.bytes,
        }
      : null;
  return { outcome, cost, durable };
}

/** What `summarizeLoad` needs of the test besides its samples. */
export interface LoadShape {
  readonly concurrency: number;
  /** Payload bytes each successful op writes (0 for reads). */
  readonly payloadBytesPerOp: number;
  /** The test scraped durable counters (writes): its result has the two durable figures. */
  readonly durable: boolean;
}

/**
 * One result from the samples of one test on one system: ops and errors summed, throughput =
 * successful ops over the samples' summed wall time, latency percentiles over every request of
 * every sample, CPU over the summed wall time. Durable figures only when every sample has them.
 */
export function summarizeLoad(samples: readonly LoadSample[], shape: LoadShape): LoadResult {
  let started = 0;
  let errors = 0;
  let firstError: string | null = null;
  let wallSeconds = 0;
  let latencyCount = 0;
  for (const { outcome } of samples) {
    started += outcome.started;
    errors += outcome.errors;
    firstError ??= outcome.firstError;
    wallSeconds += outcome.wallSeconds;
    latencyCount += outcome.latenciesMs.length;
  }
  const latencies = new Float64Array(latencyCount);
  let at = 0;
  for (const { outcome } of samples) {
    latencies.set(outcome.latenciesMs, at);
    at += outcome.latenciesMs.length;
  }
  const cost = sumCostSeconds(samples.map((sample) => sample.cost));
  const succeeded = started - errors;
  const payloadBytes = succeeded * shape.payloadBytesPerOp;
  const durable = samples.every((sample) => sample.durable !== null)
    ? samples.reduce(
        (sum, sample) => ({
          writes: sum.writes + (sample.durable?.writes ?? 0),
          bytes: sum.bytes + (sample.durable?.bytes ?? 0),
        }),
        { writes: 0, bytes: 0 },
      )
    : null;
  return {
    ops: started,
    concurrency: shape.concurrency,
    errors,
    firstError,
    wallSeconds: round(wallSeconds, 3),
    opsPerSecond: round(wallSeconds > 0 ? succeeded / wallSeconds : null, 0),
    latency: summariseLatencies(latencies),
    cost: costDeltaOf(cost),
    diskBytesPerPayloadByte: payloadBytes > 0 ? round(cost.serverWriteBytes / payloadBytes, 2) : null,
    ...(shape.durable
      ? {
          durableWritesPerOp: durable !== null && succeeded > 0 ? round(durable.writes / succeeded, 3) : null,
          durableBytesPerPayloadByte:
            durable !== null && payloadBytes > 0 ? round(durable.bytes / payloadBytes, 2) : null,
        }
      : {}),
  };
}

/** `measureLoad` and `summarizeLoad` in one: a test measured in one stretch. */
export async function runLoad(
  spec: LoadSpec,
  serverPids: () => number[],
  durableCounters?: () => Promise<DurableCounters | null>,
): Promise<LoadResult> {
  const sample = await measureLoad(spec, serverPids, durableCounters);
  return summarizeLoad([sample], {
    concurrency: spec.concurrency,
    payloadBytesPerOp: spec.payloadBytesPerOp,
    durable: durableCounters !== undefined,
  });
}

/** A value of `bytes` bytes that starts with its key (so a read-back can check it). */
export function makeValue(key: string, bytes: number): Buffer {
  const value = Buffer.alloc(bytes, 0x61 + (key.length % 26));
  Buffer.from(key).copy(value, 0, 0, Math.min(Buffer.byteLength(key), bytes));
  return value;
}
