/**
 * `--memory`: writes N keys (100 B values, 64 in flight) into a fresh 3-node Conclave cluster
 * and samples each node's resident memory (VmRSS) every second; the figure is each node's
 * maximum (target: under 150 MB for 1,000,000 keys).
 */
import { ConclaveCluster } from "./conclave-cluster.ts";
import { conclaveDriver } from "./drivers.ts";
import { closedLoop, makeValue } from "./load.ts";
import { processRssBytes } from "./proc-stats.ts";
import { round } from "./stats.ts";

/** Wall-clock cap of the memory test (1,000,000 puts at ~3,000/s take ~6 minutes). */
const memoryWallMsMax = 45 * 60_000;
const sampleEveryMs = 1000;
/** Samples kept in the results file: one every this many seconds. */
const keptSampleEverySeconds = 10;
export const rssTargetMb = 150;
/**
 * The test stops writing once a node passes this: the machine is shared, and three nodes
 * growing without bound would take everyone's memory. The result then says it stopped early.
 */
const rssAbortMb = 2048;

export interface MemoryResult {
  readonly keysAsked: number;
  readonly keysWritten: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** Why writing stopped before every key was written (RSS cap or wall-clock cap), null otherwise. */
  readonly stoppedEarly: string | null;
  readonly wallSeconds: number | null;
  readonly opsPerSecond: number | null;
  /** Largest RSS seen per node, MB (1 MB = 2^20 bytes). */
  readonly maxRssMb: Record<string, number | null>;
  /** RSS per node every 10 s from before the first write: [seconds since start, MB of n1, n2, n3]. */
  readonly samples: (number | null)[][];
}

export async function runMemoryTest(keys: number, log: (line: string) => void): Promise<MemoryResult> {
  const cluster = new ConclaveCluster(3);
  await cluster.start();
  const driver = conclaveDriver(cluster.endpoints(), { socketsMax: 64, timeoutMs: 10_000 });
  const names = cluster.memberNames();
  const pids = names.map((_, at) => cluster.pid(at));
  const maxRss = names.map(() => 0);
  const samples: (number | null)[][] = [];
  const startMs = performance.now();
  let written = 0;
  let overCap: string | null = null;
  const sample = (): void => {
    const rssMb = pids.map((pid) => (pid === null ? null : processRssBytes(pid)));
    rssMb.forEach((bytes, at) => {
      if (bytes !== null) maxRss[at] = Math.max(maxRss[at] ?? 0, bytes);
      if (bytes !== null && bytes > rssAbortMb * 2 ** 20 && overCap === null)
        overCap = `${names[at]} passed ${rssAbortMb} MB RSS after ${written} keys`;
    });
    const seconds = Math.round((performance.now() - startMs) / 1000);
    if (seconds % keptSampleEverySeconds === 0) {
      const mb = rssMb.map((bytes) => (bytes === null ? null : round(bytes / 2 ** 20, 1)));
      samples.push([seconds, ...mb]);
      log(`memory: ${seconds} s, ${written} keys, RSS MB ${mb.join(" / ")}`);
    }
  };
  sample(); // before any write: the idle footprint is samples[0]
  const timer = setInterval(sample, sampleEveryMs);
  try {
    const value = makeValue("m".repeat(32), 100);
    const outcome = await closedLoop(
      keys,
      64,
      memoryWallMsMax,
      async (i) => {
        await driver.put(`mem/${String(i).padStart(8, "0")}`, value);
        written++;
      },
      () => overCap !== null,
    );
    sample();
    return {
      keysAsked: keys,
      keysWritten: written,
      errors: outcome.errors,
      firstError: outcome.firstError,
      stoppedEarly:
        overCap ?? (outcome.started < keys ? `wall-clock cap of ${memoryWallMsMax / 60_000} minutes` : null),
      wallSeconds: round(outcome.wallSeconds, 1),
      opsPerSecond: round(written / outcome.wallSeconds, 0),
      maxRssMb: Object.fromEntries(names.map((name, at) => [name, round((maxRss[at] ?? 0) / 2 ** 20, 1)])),
      samples,
    };
  } finally {
    clearInterval(timer);
    driver.close();
    await cluster.stop();
  }
}
