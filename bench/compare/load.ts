/**
 * Closed-loop load (as the etcd harness): N workers, each issues its next request when the
 * previous one returned; latency = each request's wall time in the client. Every load test is
 * bounded by an op count and a wall-clock cap (workers stop taking new ops after the cap).
 */
import type { DurableCounters } from "./cluster.ts";
import { type CostDelta, costDelta, costSnapshot } from "./proc-stats.ts";
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
 * Runs a load test against servers `serverPids()` and measures its cost; `durableCounters`, when
 * given, is read before and after the timed ops (writes: fsyncs and log bytes per write).
 */
export async function runLoad(
  spec: LoadSpec,
  serverPids: () => number[],
  durableCounters?: () => Promise<DurableCounters | null>,
): Promise<LoadResult> {
  if (spec.warmupOps > 0) await closedLoop(spec.warmupOps, spec.concurrency, spec.wallMsMax, spec.warmOp);
  const pids = serverPids();
  const durableBefore = (await durableCounters?.()) ?? null;
  const before = costSnapshot(pids);
  const outcome = await closedLoop(spec.total, spec.concurrency, spec.wallMsMax, spec.op);
  const cost = costDelta(before, costSnapshot(pids));
  const durableAfter = durableBefore === null ? null : ((await durableCounters?.()) ?? null);
  const succeeded = outcome.started - outcome.errors;
  const payloadBytes = succeeded * spec.payloadBytesPerOp;
  return {
    ops: outcome.started,
    concurrency: spec.concurrency,
    errors: outcome.errors,
    firstError: outcome.firstError,
    wallSeconds: round(outcome.wallSeconds, 3),
    opsPerSecond: round(succeeded / outcome.wallSeconds, 0),
    latency: summariseLatencies(outcome.latenciesMs),
    cost,
    diskBytesPerPayloadByte: payloadBytes > 0 ? round(cost.serverWriteBytes / payloadBytes, 2) : null,
    ...(durableCounters === undefined
      ? {}
      : {
          durableWritesPerOp:
            durableBefore !== null && durableAfter !== null && succeeded > 0
              ? round((durableAfter.writes - durableBefore.writes) / succeeded, 3)
              : null,
          durableBytesPerPayloadByte:
            durableBefore !== null && durableAfter !== null && payloadBytes > 0
              ? round((durableAfter.bytes - durableBefore.bytes) / payloadBytes, 2)
              : null,
        }),
  };
}

/** A value of `bytes` bytes that starts with its key (so a read-back can check it). */
export function makeValue(key: string, bytes: number): Buffer {
  const value = Buffer.alloc(bytes, 0x61 + (key.length % 26));
  Buffer.from(key).copy(value, 0, 0, Math.min(Buffer.byteLength(key), bytes));
  return value;
}
