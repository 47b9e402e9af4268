/**
 * What the servers cost, read from Linux /proc (best effort: a process that is gone counts 0):
 * CPU = utime + stime from /proc/<pid>/stat, disk = `write_bytes` of /proc/<pid>/io (bytes this
 * process caused to be sent to the block layer — an approximation of what was fsynced), memory =
 * VmRSS of /proc/<pid>/status. The client's own CPU comes from process.cpuUsage().
 */
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux we run on). */
const clockTicksPerSecond = 100;

/** CPU seconds (user + system) used so far by `pid`, 0 when it cannot be read. */
export function processCpuSeconds(pid: number): number {
  try {
    return cpuSecondsOfStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return 0;
  }
}

/** utime + stime of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line, in seconds. */
function cpuSecondsOfStat(stat: string): number {
  // The command name may hold spaces; fields after it start two characters past the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/** Bytes `pid` has written to storage so far (`write_bytes`), 0 when it cannot be read. */
export function processWriteBytes(pid: number): number {
  try {
    const match = /^write_bytes:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
    return match === null ? 0 : Number(match[1]);
  } catch {
    return 0;
  }
}

/** Resident memory of `pid` in bytes (VmRSS), null when it cannot be read. */
export function processRssBytes(pid: number): number | null {
  try {
    const match = /^VmRSS:\s*(\d+)\s*kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** A point-in-time reading of the servers' and the client's resource use. */
export interface CostSnapshot {
  readonly atMs: number;
  readonly clientCpuSeconds: number;
  readonly serverCpuSeconds: number;
  readonly serverWriteBytes: number;
}

/** Reads the cost counters of the client and of `serverPids` now. */
export function costSnapshot(serverPids: readonly number[]): CostSnapshot {
  const client = process.cpuUsage();
  let serverCpuSeconds = 0;
  let serverWriteBytes = 0;
  for (const pid of serverPids) {
    serverCpuSeconds += processCpuSeconds(pid);
    serverWriteBytes += processWriteBytes(pid);
  }
  return {
    atMs: performance.now(),
    clientCpuSeconds: (client.user + client.system) / 1e6,
    serverCpuSeconds,
    serverWriteBytes,
  };
}

/** CPU as % of one core (200 % = both cores of a 2-core machine) and bytes written, between two snapshots. */
export interface CostDelta {
  readonly clientCpuPercent: number;
  readonly serverCpuPercent: number;
  readonly serverWriteBytes: number;
}

/** What was used between two snapshots, unrounded, so that stretches of one test can be summed. */
export interface CostSeconds {
  readonly wallSeconds: number;
  readonly clientCpuSeconds: number;
  readonly serverCpuSeconds: number;
  readonly serverWriteBytes: number;
}

export function costSecondsBetween(before: CostSnapshot, after: CostSnapshot): CostSeconds {
  return {
    wallSeconds: Math.max(1e-6, (after.atMs - before.atMs) / 1000),
    clientCpuSeconds: after.clientCpuSeconds - before.clientCpuSeconds,
    serverCpuSeconds: after.serverCpuSeconds - before.serverCpuSeconds,
    serverWriteBytes: after.serverWriteBytes - before.serverWriteBytes,
  };
}

/** Stretches summed: their wall times, CPU seconds and bytes. */
export function sumCostSeconds(parts: readonly CostSeconds[]): CostSeconds {
  const sum = { wallSeconds: 0, clientCpuSeconds: 0, serverCpuSeconds: 0, serverWriteBytes: 0 };
  for (const part of parts) {
    sum.wallSeconds += part.wallSeconds;
    sum.clientCpuSeconds += part.clientCpuSeconds;
    sum.serverCpuSeconds += part.serverCpuSeconds;
    sum.serverWriteBytes += part.serverWriteBytes;
  }
  return { ...sum, wallSeconds: Math.max(1e-6, sum.wallSeconds) };
}

/** CPU as percent of one core over the wall time. */
export function costDeltaOf(cost: CostSeconds): CostDelta {
  return {
    clientCpuPercent: Math.round((100 * cost.clientCpuSeconds) / cost.wallSeconds),
    serverCpuPercent: Math.round((100 * cost.serverCpuSeconds) / cost.wallSeconds),
    serverWriteBytes: cost.serverWriteBytes,
  };
}

/**
 * CPU seconds used so far by `pid`'s threads, summed by kind: "v8" for V8's helper threads
 * (`V8Worker`: the optimizing compiler, the parallel and concurrent GC), "pool" for libuv's
 * thread pool (`libuv-worker`: file writes), "main" for every other thread (a Go server's threads
 * are all "main"). A thread that ends between the listing and the read counts 0.
 */
export function threadCpuSecondsByKind(pid: number): Record<"main" | "v8" | "pool", number> {
  const sums = { main: 0, v8: 0, pool: 0 };
  let threads: string[] = [];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return sums;
  }
  for (const thread of threads) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${thread}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const kind = name.startsWith("V8Worker") ? "v8" : name.startsWith("libuv-worker") ? "pool" : "main";
      sums[kind] += cpuSecondsOfStat(stat);
    } catch {
      // the thread ended
    }
  }
  return sums;
}
