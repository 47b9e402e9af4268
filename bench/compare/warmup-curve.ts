/**
 * `npm run bench:warmup [-- --windows N --puts N --label L --out-dir D]`: how fast a fresh
 * cluster gets over its first writes. A fresh 3-member cluster of each system in turn (etcd, then
 * Conclave; only one runs at a time) takes N windows of puts at 64 in flight (100 B values,
 * unique keys), and each window's puts/s and servers' CPU per put are printed, Conclave's split
 * by thread kind (main, V8's helper threads, libuv's pool). This is what chose bench:compare's
 * `--cluster-warmup` (docs/benchmarks.md, "What runs").
 */

import type { BenchCluster } from "./cluster.ts";
import { prepareServerEntry } from "./conclave-cluster.ts";
import { describeEnvironment } from "./environment.ts";
import { closedLoop, makeValue } from "./load.ts";
import { type CurveOptions, parseCurveOptions, parseOptions } from "./options.ts";
import { threadCpuSecondsByKind } from "./proc-stats.ts";
import { runBenchScript } from "./processes.ts";
import { writeMarkdownResult } from "./results-file.ts";
import { mainDriver, startCluster } from "./scenarios.ts";

const concurrency = 64;
const valueBytes = 100;
const windowWallMsMax = 120_000;

interface WindowFigures {
  readonly system: "etcd" | "conclave";
  readonly putsDone: number;
  readonly putsPerSecond: number;
  readonly errors: number;
  /** Servers' CPU per put in this window, µs, by thread kind (all "main" for etcd). */
  readonly cpuMicros: { main: number; v8: number; pool: number };
}

async function curveOf(cluster: BenchCluster, options: CurveOptions): Promise<WindowFigures[]> {
  const driver = mainDriver(cluster);
  const figures: WindowFigures[] = [];
  const cpuNow = () => {
    const sums = { main: 0, v8: 0, pool: 0 };
    for (const pid of cluster.pids()) {
      const byKind = threadCpuSecondsByKind(pid);
      sums.main += byKind.main;
      sums.v8 += byKind.v8;
      sums.pool += byKind.pool;
    }
    return sums;
  };
  try {
    for (let window = 0; window < options.windows; window++) {
      const base = window * options.puts;
      const before = cpuNow();
      const outcome = await closedLoop(options.puts, concurrency, windowWallMsMax, (at) =>
        driver.put(`warm/${base + at}`, makeValue(`warm/${base + at}`, valueBytes)),
      );
      const after = cpuNow();
      const succeeded = outcome.started - outcome.errors;
      const micros = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, succeeded));
      const row: WindowFigures = {
        system: cluster.system,
        putsDone: base + outcome.started,
        putsPerSecond: Math.round(succeeded / outcome.wallSeconds),
        errors: outcome.errors,
        cpuMicros: {
          main: micros(after.main - before.main),
          v8: micros(after.v8 - before.v8),
          pool: micros(after.pool - before.pool),
        },
      };
      figures.push(row);
      console.error(describeRow(row));
    }
  } finally {
    driver.close();
  }
  return figures;
}

function describeRow(row: WindowFigures): string {
  const c = row.cpuMicros;
  const total = c.main + c.v8 + c.pool;
  return `${row.system.padEnd(8)} after ${String(row.putsDone).padStart(7)} puts: ${String(row.putsPerSecond).padStart(5)} puts/s, server CPU ${total} µs/put (main ${c.main}, V8 helpers ${c.v8}, pool ${c.pool})${row.errors > 0 ? `, ${row.errors} errors` : ""}`;
}

function renderMarkdown(rows: readonly WindowFigures[], options: CurveOptions, startedAt: string): string {
  const environment = describeEnvironment();
  const lines = [
    `# Warm-up curve, ${startedAt}`,
    "",
    `${environment.nproc} CPUs; ${environment.node}; ${environment.etcd ?? "etcd unknown"}. Fresh 3-member clusters, one at a time; ${options.windows} windows of ${options.puts} puts at ${concurrency} in flight, ${valueBytes} B values.`,
    "",
    "| system | puts so far | puts/s | server CPU µs/put | main | V8 helpers | libuv pool |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((row) => {
      const c = row.cpuMicros;
      return `| ${row.system} | ${row.putsDone} | ${row.putsPerSecond} | ${c.main + c.v8 + c.pool} | ${c.main} | ${c.v8} | ${c.pool} |`;
    }),
    "",
  ];
  return lines.join("\n");
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseCurveOptions(argv);
  if (typeof options === "string") {
    console.error(options);
    return 2;
  }
  // startCluster takes the comparison's options (etcd timing): its defaults, as bench:compare runs.
  const compare = parseOptions([]);
  if (!compare.ok) throw new Error(compare.message);
  if (describeEnvironment().etcd === null) {
    console.error("etcd is not installed; install it with: apt-get install -y etcd-server etcd-client");
    return 2;
  }
  prepareServerEntry(false);
  const startedAt = new Date().toISOString();
  const rows: WindowFigures[] = [];
  for (const system of ["etcd", "conclave"] as const) {
    const cluster = await startCluster(system, 3, compare.options);
    try {
      rows.push(...(await curveOf(cluster, options)));
    } finally {
      await cluster.stop();
    }
  }
  const path = writeMarkdownResult(options, startedAt, renderMarkdown(rows, options, startedAt));
  console.log(`written: ${path}`);
  return 0;
}

runBenchScript(main);
