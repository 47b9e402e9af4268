/**
 * `npm run bench:ab [-- --base REV --rounds N --ops N --warmup N --in-flight N --label L --out-dir D]`:
 * is a change to Conclave faster? The working tree (the change) against a git revision (the base,
 * default HEAD): a fresh 3-member cluster of each build, each warmed with `--warmup` untimed puts,
 * then `--rounds` rounds of `--ops` puts at `--in-flight` in flight on each, the order swapped
 * every round (base first, then change first). Only the build measured runs: the other cluster
 * is stopped with SIGSTOP. It prints each build's puts/s and servers' CPU per put, round by round,
 * and the rounds compared in pairs, and writes them under `--out-dir`. Both builds get this
 * checkout's server flags (scripts/server-node-flags.mjs); `--change-node-flags "F"` adds Node
 * flags to the change build's servers alone, to measure a flag (with `--base HEAD`).
 *
 * Why pairs: this machine's speed drifts by ±20 % within minutes (a round's CPU per put moved
 * from 316 to 483 µs in one run of identical rounds), more than most changes are worth. A change
 * that helps shows in most pairs; a difference of a few percent in the medians alone does not
 * mean anything (docs/benchmarks.md, "Comparing two builds").
 */

import { spawnSync } from "node:child_process";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { type AbRound, renderAb, summarizeAb } from "./ab-summary.ts";
import { buildDist, ConclaveCluster, prepareServerEntry, repoRoot } from "./conclave-cluster.ts";
import { conclaveDriver, type KvDriver } from "./drivers.ts";
import { describeEnvironment } from "./environment.ts";
import { closedLoop, makeValue } from "./load.ts";
import { type AbOptions, parseAbOptions } from "./options.ts";
import { processCpuSeconds } from "./proc-stats.ts";
import { makeTempDir, removeTempDir, runBenchScript, waitFor } from "./processes.ts";
import { writeMarkdownResult } from "./results-file.ts";
import { signal, stopProcesses } from "./turns.ts";

const valueBytes = 100;
const roundWallMsMax = 120_000;
const driverOptions = { socketsMax: 256, timeoutMs: 10_000 };

interface Build {
  readonly name: string;
  readonly cluster: ConclaveCluster;
  readonly driver: KvDriver;
  readonly rounds: AbRound[];
}

function git(args: readonly string[]): Buffer {
  const result = spawnSync("git", args, { cwd: repoRoot, maxBuffer: 1 << 30 });
  if (result.status !== 0) {
    throw new Error(`git ${args.join(" ")} failed: ${result.stderr?.toString().trim() ?? result.error}`);
  }
  return result.stdout;
}

/** The base revision's files in a temp directory, with this checkout's node_modules, built. */
function checkOutBase(revision: string): string {
  const directory = makeTempDir("conclave-bench-ab-base-");
  const tar = git(["archive", "--format=tar", revision]);
  const unpacked = spawnSync("tar", ["-x", "-C", directory], { input: tar });
  if (unpacked.status !== 0) throw new Error(`unpacking ${revision} failed: ${unpacked.stderr.toString()}`);
  symlinkSync(join(repoRoot, "node_modules"), join(directory, "node_modules"), "dir");
  buildDist(directory);
  return directory;
}

/** Continues a stopped cluster and waits until it takes a put (it may elect a leader first). */
async function resume(build: Build): Promise<void> {
  signal(build.cluster.pids(), "SIGCONT");
  let probe = 0;
  await waitFor(`${build.name} to take a put again`, 30_000, async () => {
    const key = `ab/probe/${probe++}`;
    return build.driver.put(key, makeValue(key, valueBytes)).then(
      () => true,
      () => null,
    );
  });
}

async function round(build: Build, index: number, options: AbOptions): Promise<AbRound> {
  await resume(build);
  const pids = build.cluster.pids();
  const cpu = () => pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  const before = cpu();
  const outcome = await closedLoop(options.ops, options.inFlight, roundWallMsMax, (at) => {
    const key = `ab/${index}/${at}`;
    return build.driver.put(key, makeValue(key, valueBytes));
  });
  const after = cpu();
  await stopProcesses(pids, build.name);
  const succeeded = Math.max(1, outcome.started - outcome.errors);
  return {
    putsPerSecond: Math.round(succeeded / outcome.wallSeconds),
    cpuMicrosPerPut: Math.round(((after - before) * 1e6) / succeeded),
    errors: outcome.errors,
  };
}

async function startBuild(
  name: string,
  checkout: string,
  nodeFlags: readonly string[],
  options: AbOptions,
): Promise<Build> {
  const cluster = new ConclaveCluster(3, checkout, nodeFlags);
  await cluster.start();
  const driver = conclaveDriver(cluster.endpoints(), driverOptions);
  const build = { name, cluster, driver, rounds: [] };
  console.error(`${name}: ${options.warmup} warm-up puts`);
  await closedLoop(options.warmup, options.inFlight, 30 * roundWallMsMax, (at) =>
    driver.put(`ab/warm/${at}`, makeValue(`ab/warm/${at}`, valueBytes)),
  );
  await stopProcesses(cluster.pids(), name);
  return build;
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseAbOptions(argv);
  if (typeof options === "string") {
    console.error(options);
    return 2;
  }
  const baseCommit = git(["rev-parse", "--short", `${options.base}^{commit}`])
    .toString()
    .trim();
  const flags = options.changeNodeFlags.join(" ");
  const names = {
    base: `${options.base} (${baseCommit})`,
    change: flags === "" ? "working tree" : `working tree ${flags}`,
  };
  const baseDirectory = checkOutBase(options.base);
  prepareServerEntry(false);
  const startedAt = new Date().toISOString();
  const builds: Build[] = [];
  try {
    builds.push(await startBuild(names.base, baseDirectory, [], options));
    builds.push(await startBuild(names.change, repoRoot, options.changeNodeFlags, options));
    for (let index = 0; index < options.rounds; index++) {
      const order = index % 2 === 0 ? builds : [...builds].reverse();
      for (const build of order) {
        const figures = await round(build, index, options);
        build.rounds.push(figures);
        console.error(
          `round ${index + 1} ${build.name}: ${figures.putsPerSecond} puts/s, ${figures.cpuMicrosPerPut} µs CPU/put${figures.errors > 0 ? `, ${figures.errors} errors` : ""}`,
        );
      }
    }
  } finally {
    for (const build of builds) {
      signal(build.cluster.pids(), "SIGCONT");
      build.driver.close();
      await build.cluster.stop();
    }
    removeTempDir(baseDirectory);
  }
  const [base, change] = builds as [Build, Build];
  const summary = summarizeAb(base.rounds, change.rounds);
  const table = renderAb(summary, base.rounds, change.rounds, names);
  console.log(table);
  const environment = describeEnvironment();
  const header = [
    `# bench:ab, ${startedAt}`,
    "",
    `${environment.nproc} CPUs (${environment.cpuModel}); ${environment.node}. Base ${names.base} against the working tree; fresh 3-member clusters, ${options.warmup} warm-up puts each, ${options.rounds} rounds of ${options.ops} puts of ${valueBytes} B at ${options.inFlight} in flight, the order swapped every round, the other cluster stopped.`,
    "",
  ];
  const path = writeMarkdownResult(options, startedAt, `${header.join("\n")}${table}\n`);
  console.log(`written: ${path}`);
  return 0;
}

runBenchScript(main);
