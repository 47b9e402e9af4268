/**
 * The comparison itself: for each run, fresh clusters of both systems, every test on both,
 * interleaved (A B, and B A on the next run so neither always goes first), then the growth
 * group on fresh 3- and 5-node clusters. Results are raw measurements; report.ts sums them up.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { BenchCluster, DurableCounters } from "./cluster.ts";
import { ConclaveCluster, MemberExitedError } from "./conclave-cluster.ts";
import {
  type ConclaveDriver,
  conclaveDriver,
  etcdDriver,
  type KvDriver,
  type SystemName,
} from "./drivers.ts";
import { EtcdCluster } from "./etcd-cluster.ts";
import { type DriverFactory, type KillResult, killOnce } from "./failover.ts";
import type { ClientKind } from "./http-client.ts";
import {
  type LoadResult,
  type LoadSample,
  type LoadShape,
  type LoadSpec,
  makeValue,
  measureLoad,
  runLoad,
  summarizeLoad,
} from "./load.ts";
import type { CompareOptions, TestName } from "./options.ts";
import { waitFor } from "./processes.ts";
import { type SlowRequestLine, summarizeRequestSteps } from "./request-steps.ts";
import { Turns } from "./turns.ts";

/** One load-test measurement (test names: seq, put64, …, sqlInsert64, growth-n5-1024). */
export interface LoadMeasurement {
  readonly run: number;
  readonly system: SystemName;
  readonly test: string;
  readonly result: LoadResult;
}

/** One leader kill. */
export interface KillMeasurement {
  readonly run: number;
  readonly system: SystemName;
  readonly kill: KillResult;
}

export interface Measurements {
  readonly loads: LoadMeasurement[];
  readonly kills: KillMeasurement[];
  /** With --trace-steps: per test, where Conclave's requests spent their time (request-steps.ts). */
  readonly requestSteps: { readonly test: string; readonly summary: string }[];
}

/** Value sizes of the growth group. */
export const growthValueBytes = [100, 1024, 10_240] as const;
/** Cluster sizes of the growth group. */
export const growthNodes = [3, 5] as const;
const defaultValueBytes = 100;
const requestTimeoutMs = 10_000;
const socketsPerMember = 256;

type Log = (line: string) => void;

/**
 * The load tests' driver: every member in turn, or only `member` (an index into the endpoints),
 * over the `client` build (default lean).
 */
export function mainDriver(cluster: BenchCluster, member?: number, client: ClientKind = "lean"): KvDriver {
  const options = {
    socketsMax: socketsPerMember,
    timeoutMs: requestTimeoutMs,
    client,
    ...(member === undefined ? {} : { member }),
  };
  return cluster.system === "etcd"
    ? etcdDriver(cluster.endpoints(), options)
    : conclaveDriver(cluster.endpoints(), options);
}

/** A started cluster with its drivers, before its first turn. */
export function systemUnderTest(cluster: BenchCluster, client: ClientKind): SystemUnderTest {
  const driver = mainDriver(cluster, undefined, client);
  return { cluster, driver, load: driver, loadTarget: null, getKeys: null };
}

/**
 * Gives `sut`'s system its turn (its members continued, serving) and, with `--send-to primary`,
 * points its load driver at its leader as of now: a continued Conclave cluster elects again, so
 * the leader may differ from the last turn's.
 */
export async function takeTurn(sut: SystemUnderTest, turns: Turns, options: CompareOptions): Promise<void> {
  await turns.give(sut.cluster.system);
  if (options.sendTo === "every") return;
  const leader = await waitFor(`the ${sut.cluster.system} cluster's leader`, 10_000, () =>
    sut.cluster.leader(),
  );
  if (leader === sut.loadTarget) return;
  if (sut.load !== sut.driver) sut.load.close();
  sut.load = mainDriver(sut.cluster, leader, options.client);
  sut.loadTarget = leader;
}

/**
 * Sockets per member for the failover writer: a put forwarded to the dead leader holds its
 * socket until the server gives up (etcd: ~7 s), and at 100 puts/s a capped pool would queue
 * new puts behind those in the client and delay the figure (HTTP/1.1 has no multiplexing).
 */
const failoverSocketsPerMember = 2048;

function driverFactory(system: SystemName, client: ClientKind): DriverFactory {
  return (endpoints, member, timeoutMs) => {
    const options = { socketsMax: failoverSocketsPerMember, timeoutMs, member, client };
    return system === "etcd" ? etcdDriver(endpoints, options) : conclaveDriver(endpoints, options);
  };
}

/** A cluster of `system` with `size` members, started. */
export async function startCluster(
  system: SystemName,
  size: number,
  options: CompareOptions,
): Promise<BenchCluster> {
  for (let attempt = 1; ; attempt++) {
    const cluster =
      system === "etcd"
        ? new EtcdCluster(size, options.etcdTiming, options.etcdScheduling)
        : new ConclaveCluster(size);
    try {
      await cluster.start();
      return cluster;
    } catch (error) {
      await cluster.stop();
      // A member that died at start (a port taken between freePort and its bind) gets a new
      // cluster on new ports, twice at most; anything else is a failure of the run.
      if (!(error instanceof MemberExitedError) || attempt >= 3) throw error;
      process.stderr.write(`${system}: ${error.message.split("\n")[0]}; starting a new cluster\n`);
    }
  }
}

export interface SystemUnderTest {
  readonly cluster: BenchCluster;
  /** Every member in turn: the turns' probes (one write through each member). */
  readonly driver: KvDriver;
  /** The load tests' driver: `driver` itself, or with `--send-to primary` one to the leader. */
  load: KvDriver;
  /** The member `load` sends to, with `--send-to primary`. */
  loadTarget: number | null;
  /** Keys known to exist for the get tests: prefix and count. */
  getKeys: { prefix: string; count: number } | null;
}

/** Sequential puts per test: the etcd harness's 2,000 (at ~1–5 ms each, more adds only time). */
const sequentialOpsMax = 2000;

/**
 * Timed ops of each growth test: a quarter of `--ops` (5,000 in a full run). Six sizes × two
 * systems per run, with 10 KB values at a few hundred puts/s, would otherwise take ~10 minutes.
 */
export function growthOps(options: CompareOptions): number {
  return Math.max(1, Math.ceil(options.opsPerTest / 4));
}

/** The key of put `i` of a test (`tag` t: timed, w…: warm-up). */
function putKey(prefix: string, tag: string, i: number): string {
  return `${prefix}/${tag}/${String(i).padStart(7, "0")}`;
}

function putSpec(
  driver: KvDriver,
  options: CompareOptions,
  prefix: string,
  concurrency: number,
  valueBytes: number,
  slice: Slice = { index: 0, firstOp: 0, ops: options.opsPerTest },
): LoadSpec {
  const value = makeValue("v".repeat(32), valueBytes);
  return {
    total: slice.ops,
    concurrency,
    wallMsMax: options.testWallMsMax,
    warmupOps: options.warmupOps,
    // Timed keys are numbered across the slices, so a test's keys are t/0 … t/(ops-1) in all.
    op: (i) => driver.put(putKey(prefix, "t", slice.firstOp + i), value),
    warmOp: (i) => driver.put(putKey(prefix, `w${slice.index}`, i), value),
    payloadBytesPerOp: valueBytes,
  };
}

async function ensureGetKeys(sut: SystemUnderTest, options: CompareOptions, prefix: string): Promise<void> {
  if (sut.getKeys !== null) return;
  const spec = putSpec(sut.load, options, `${prefix}/get`, 64, defaultValueBytes);
  const filled = await runLoad({ ...spec, warmupOps: 0 }, () => []);
  if (filled.errors > 0) throw new Error(`populating keys for the get tests failed: ${filled.firstError}`);
  sut.getKeys = { prefix: `${prefix}/get/t`, count: filled.ops };
}

function getSpec(
  sut: SystemUnderTest,
  options: CompareOptions,
  linearizable: boolean,
  ops: number,
): LoadSpec {
  const keys = sut.getKeys;
  if (keys === null) throw new Error("no keys to get");
  const picks = Uint32Array.from({ length: ops }, () => Math.floor(Math.random() * keys.count));
  const op = async (i: number): Promise<void> => {
    const key = `${keys.prefix}/${String(picks[i] ?? 0).padStart(7, "0")}`;
    if ((await sut.load.get(key, linearizable)) === null) throw new Error(`missing key ${key}`);
  };
  return {
    total: ops,
    concurrency: 64,
    wallMsMax: options.testWallMsMax,
    warmupOps: options.warmupOps,
    op,
    warmOp: op,
    payloadBytesPerOp: 0,
  };
}

function sqlSpecs(driver: ConclaveDriver, options: CompareOptions): { insert: LoadSpec; select: LoadSpec } {
  const text = "v".repeat(defaultValueBytes);
  const warmIdBase = 10_000_000;
  const common = { concurrency: 64, wallMsMax: options.testWallMsMax, warmupOps: options.warmupOps };
  const insert = (id: number) =>
    driver.sqlExecute("INSERT INTO bench_rows (id, v) VALUES (?, ?)", [id, text]);
  const select = async (i: number): Promise<void> => {
    const id = Math.floor(Math.random() * options.opsPerTest);
    const rows = await driver.sqlQuery("SELECT v FROM bench_rows WHERE id = ?", [id]);
    if (rows.length !== 1) throw new Error(`row ${id} not found (${i})`);
  };
  return {
    insert: {
      ...common,
      total: options.opsPerTest,
      op: insert,
      warmOp: (i) => insert(warmIdBase + i),
      payloadBytesPerOp: defaultValueBytes,
    },
    select: { ...common, total: options.opsPerTest, op: select, warmOp: select, payloadBytesPerOp: 0 },
  };
}

/** One slice's measurement of a test on one system: its name, sample and shape (sql gives two). */
type SliceMeasurement = [name: string, sample: LoadSample, shape: LoadShape];

/** Runs one slice of a named main-group test on one system. */
async function runTest(
  test: TestName,
  sut: SystemUnderTest,
  options: CompareOptions,
  prefix: string,
  slice: Slice,
): Promise<SliceMeasurement[]> {
  const pids = () => sut.cluster.pids();
  const measured = async (
    name: string,
    spec: LoadSpec,
    durable?: () => Promise<DurableCounters | null>,
  ): Promise<SliceMeasurement> => [
    name,
    await measureLoad(spec, pids, durable),
    {
      concurrency: spec.concurrency,
      payloadBytesPerOp: spec.payloadBytesPerOp,
      durable: durable !== undefined,
    },
  ];
  switch (test) {
    case "seq":
      return [
        await measured("seq", putSpec(sut.load, options, `${prefix}/seq`, 1, defaultValueBytes, slice)),
      ];
    case "put64":
    case "put256": {
      const concurrency = test === "put64" ? 64 : 256;
      const spec = putSpec(sut.load, options, `${prefix}/${test}`, concurrency, defaultValueBytes, slice);
      return [await measured(test, spec, () => sut.cluster.durableCounters())];
    }
    case "getlin":
    case "getser":
      await ensureGetKeys(sut, options, prefix);
      return [await measured(test, getSpec(sut, options, test === "getlin", slice.ops))];
    case "sql": {
      if (sut.load.system !== "conclave") return [];
      const driver = sut.load as ConclaveDriver;
      await driver.sqlExecute(
        "CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
        [],
      );
      const specs = sqlSpecs(driver, options);
      const inserted = await measured("sqlInsert64", specs.insert);
      return [inserted, await measured("sqlSelect64", specs.select)];
    }
    default:
      return [];
  }
}

/** A stretch of a test's timed ops: the `index`th slice, ops `firstOp` … `firstOp + ops - 1`. */
export interface Slice {
  readonly index: number;
  readonly firstOp: number;
  readonly ops: number;
}

/** `total` ops in at most `count` slices of nearly equal size (none empty). */
export function slicesOf(total: number, count: number): Slice[] {
  const n = Math.max(1, Math.min(count, total));
  const slices: Slice[] = [];
  let firstOp = 0;
  for (let index = 0; index < n; index++) {
    const ops = Math.floor(total / n) + (index < total % n ? 1 : 0);
    slices.push({ index, firstOp, ops });
    firstOp += ops;
  }
  return slices;
}

/**
 * The systems' order in slice `index` of a run whose order is `order`: A B, B A, A B, … (so with
 * an even number of slices each system goes first as often, and a steady drift of the machine's
 * speed favours neither).
 */
export function sliceOrder<T>(order: readonly T[], index: number): T[] {
  return index % 2 === 0 ? [...order] : [...order].reverse();
}

function describe(result: LoadResult): string {
  const l = result.latency;
  return `${result.opsPerSecond} ops/s p50=${l.p50Ms}ms p99=${l.p99Ms}ms err=${result.errors} cpu server=${result.cost.serverCpuPercent}% client=${result.cost.clientCpuPercent}%`;
}

async function withClusters<T>(
  size: number,
  options: CompareOptions,
  body: (suts: Record<SystemName, SystemUnderTest>, turns: Turns) => Promise<T>,
): Promise<T> {
  const etcd = await startCluster("etcd", size, options);
  let conclave: BenchCluster | null = null;
  const turns = new Turns(options.idleCluster);
  try {
    conclave = await startCluster("conclave", size, options);
    const suts = {
      etcd: systemUnderTest(etcd, options.client),
      conclave: systemUnderTest(conclave, options.client),
    };
    turns.add(etcd, suts.etcd.driver);
    turns.add(conclave, suts.conclave.driver);
    try {
      await warmUpClusters(suts, turns, options);
      return await body(suts, turns);
    } finally {
      turns.continueAll();
      for (const { driver, load } of Object.values(suts)) {
        driver.close();
        if (load !== driver) load.close();
      }
    }
  } finally {
    await etcd.stop();
    await conclave?.stop();
  }
}

/**
 * Untimed puts into each fresh cluster before its first test, the same on both systems
 * (`--cluster-warmup`, default 50,000). Why: both systems get faster over their first tens of
 * thousands of writes, and the tests measure a running cluster. A Node process runs its hot paths
 * unoptimized at first, and V8 keeps compiling (TurboFan, on its helper threads) for ~50,000 puts
 * at 64 in flight: over windows of 10,000 puts into a fresh 3-member cluster (`npm run
 * bench:warmup`), its helper threads used 87-97 µs of CPU per put in the first window and 17-37
 * after 80,000 puts, its main threads 317-379 then 242-309 (2,697-3,376 then 3,719-4,535
 * puts/s). etcd speeds up too, less and sooner: 506-547 µs of server CPU per put in its first
 * window, 436-480 after 80,000 puts (2,386-2,562 then 3,072-3,333 puts/s; docs/benchmarks.md,
 * session 22).
 */
async function warmUpClusters(
  suts: Record<SystemName, SystemUnderTest>,
  turns: Turns,
  options: CompareOptions,
): Promise<void> {
  if (options.clusterWarmupOps === 0) return;
  for (const sut of Object.values(suts)) {
    await takeTurn(sut, turns, options);
    const spec = putSpec(sut.load, options, "warm", 64, defaultValueBytes, {
      index: 0,
      firstOp: 0,
      ops: options.clusterWarmupOps,
    });
    await runLoad({ ...spec, warmupOps: 0 }, () => []);
  }
}

/** The main group and failover of one run, on fresh `options.nodes`-member clusters. */
async function runMainGroup(
  run: number,
  order: SystemName[],
  options: CompareOptions,
  m: Measurements,
  log: Log,
  traced: Map<string, SlowRequestLine[]>,
) {
  const tests = options.only.filter((t) => t !== "growth" && t !== "failover");
  const wantsFailover = options.only.includes("failover");
  if (tests.length === 0 && !wantsFailover) return;
  await withClusters(options.nodes, options, async (suts, turns) => {
    for (const test of tests) {
      // SQL runs on Conclave alone: nothing to interleave it with, so it is one stretch.
      const testOps = test === "seq" ? Math.min(sequentialOpsMax, options.opsPerTest) : options.opsPerTest;
      const slices = slicesOf(testOps, test === "sql" ? 1 : options.slices);
      const samples = new Map<
        string,
        { system: SystemName; name: string; shape: LoadShape; of: LoadSample[] }
      >();
      for (const slice of slices) {
        for (const system of sliceOrder(order, slice.index)) {
          await takeTurn(suts[system], turns, options);
          const cluster = suts[system].cluster;
          const tracing = options.traceSteps && cluster instanceof ConclaveCluster ? cluster : null;
          tracing?.markRequestLogs();
          for (const [name, sample, shape] of await runTest(
            test,
            suts[system],
            options,
            `b/r${run}`,
            slice,
          )) {
            const key = `${system} ${name}`;
            const entry = samples.get(key) ?? { system, name, shape, of: [] };
            entry.of.push(sample);
            samples.set(key, entry);
            if (slices.length > 1)
              log(
                `run ${run} ${system.padEnd(8)} ${name.padEnd(11)} slice ${slice.index + 1}/${slices.length}: ${describe(summarizeLoad([sample], shape))}`,
              );
          }
          if (tracing !== null)
            traced.set(test, [...(traced.get(test) ?? []), ...tracing.requestLinesSinceMark()]);
        }
      }
      // In the run's order: the first slice went that way, and the map keeps insertion order.
      for (const { system, name, shape, of } of samples.values()) {
        const result = summarizeLoad(of, shape);
        m.loads.push({ run, system, test: name, result });
        log(`run ${run} ${system.padEnd(8)} ${name.padEnd(11)} ${describe(result)}`);
        // The get tests read the keys put ×64 wrote, when it wrote all of them.
        if (name === "put64" && result.errors === 0 && result.ops === options.opsPerTest)
          suts[system].getKeys = { prefix: `b/r${run}/put64/t`, count: result.ops };
      }
    }
    if (!wantsFailover) return;
    for (let k = 1; k <= options.killsPerRun; k++) {
      for (const system of order) {
        await turns.give(system);
        const kill = await killOnce(
          suts[system].cluster,
          driverFactory(system, options.client),
          `fo/r${run}/k${k}/`,
        );
        m.kills.push({ run, system, kill });
        log(
          `run ${run} ${system.padEnd(8)} kill ${k}: member ${kill.killedMember + 1} → first new ack ${kill.killToFirstNewAckMs} ms, acked ${kill.acked}, lost ${kill.lost}, failed fast/slow ${kill.failedFast}/${kill.failedSlow}, restart ${kill.restartMs} ms`,
        );
        await delay(500);
      }
    }
  });
}

/** The growth group of one run: put ×64 at 3 and 5 members with 100 B, 1 KB and 10 KB values. */
async function runGrowthGroup(
  run: number,
  order: SystemName[],
  options: CompareOptions,
  m: Measurements,
  log: Log,
) {
  if (!options.only.includes("growth")) return;
  for (const nodes of growthNodes) {
    await withClusters(nodes, options, async (suts, turns) => {
      for (const bytes of growthValueBytes) {
        for (const system of order) {
          await takeTurn(suts[system], turns, options);
          const spec = putSpec(suts[system].load, options, `g/r${run}/n${nodes}/${bytes}`, 64, bytes, {
            index: 0,
            firstOp: 0,
            ops: growthOps(options),
          });
          const cluster = suts[system].cluster;
          const result = await runLoad(
            spec,
            () => cluster.pids(),
            () => cluster.durableCounters(),
          );
          const test = `growth-n${nodes}-${bytes}`;
          m.loads.push({ run, system, test, result });
          log(
            `run ${run} ${system.padEnd(8)} ${test.padEnd(17)} ${describe(result)} disk/payload=${result.diskBytesPerPayloadByte}`,
          );
        }
      }
    });
  }
}

/** Every run of the comparison. */
export async function runComparison(options: CompareOptions, log: Log): Promise<Measurements> {
  const measurements: Measurements = { loads: [], kills: [], requestSteps: [] };
  const traced = new Map<string, SlowRequestLine[]>();
  for (let run = 1; run <= options.runs; run++) {
    const order: SystemName[] = run % 2 === 1 ? ["etcd", "conclave"] : ["conclave", "etcd"];
    log(`run ${run} of ${options.runs} (order: ${order.join(", ")})`);
    await runMainGroup(run, order, options, measurements, log, traced);
    await runGrowthGroup(run, order, options, measurements, log);
  }
  for (const [test, lines] of traced)
    measurements.requestSteps.push({ test, summary: summarizeRequestSteps(lines) });
  return measurements;
}
