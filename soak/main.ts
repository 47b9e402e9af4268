/**
 * `npm run soak [-- options]`: a real cluster of node processes on this machine, under a steady
 * write load and a linearizability workload, with faults injected for a bounded time; then
 * healed and checked. See soak/DESIGN.md.
 */
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { checkLinearizability, kvModel } from "../src/sim/linearizability/index.ts";
import { authorizedFetch } from "../test/e2e/api-token.ts";
import { Workload } from "../test/e2e/kv-history-workload.ts";
import { NetworkLab, networkLabUnavailable } from "../test/e2e/network-lab.ts";
import { ProcessCluster, waitFor } from "../test/e2e/node-processes.ts";
import { AcknowledgedWriters, type MemberFindings } from "./acknowledged-writes.ts";
import { FaultInjector } from "./faults.ts";
import { parseSoakOptions, type SoakOptions, usage } from "./options.ts";
import { renderReport, type SoakReport, writeReport } from "./report.ts";

/** The linearizability clients move to fresh keys this often, so each key's history stays short. */
const epochMs = 20_000;
const keysPerEpoch = 4;

function log(line: string): void {
  console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

const epochKeys = (epoch: number): string[] =>
  Array.from({ length: keysPerEpoch }, (_, at) => `e${String(epoch).padStart(4, "0")}/k${at}`);

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? 0 : Number(kb) / 1024;
  } catch {
    return 0; // the process is gone (a fault) or not yet there
  }
}

/** Waits until every member has applied the same index and reports the same database hash. */
async function converge(cluster: ProcessCluster, names: readonly string[]) {
  let last: { name: string; sha256: string; appliedIndex: number }[] = [];
  const agreed = await waitFor(
    "every member to reach the same database",
    60_000,
    async () => {
      last = await Promise.all(
        names.map(async (name) => {
          try {
            const response = await authorizedFetch(`${cluster.url(name)}/v1/debug/db-hash`, {
              signal: AbortSignal.timeout(10_000),
            });
            const body = (await response.json()) as { sha256: string; appliedIndex: number };
            return { name, sha256: body.sha256, appliedIndex: body.appliedIndex };
          } catch {
            return { name, sha256: "(no answer)", appliedIndex: -1 };
          }
        }),
      );
      const first = last[0];
      return first !== undefined &&
        last.every((member) => member.appliedIndex === first.appliedIndex && member.sha256 === first.sha256)
        ? last
        : null;
    },
    1_000,
  ).catch(() => null);
  return { agreed: agreed !== null, members: last };
}

/** `memory` of GET /v1/node: RSS, V8 heap, memory outside it; what grows tells where to look. */
async function nodeMemory(
  cluster: ProcessCluster,
  name: string,
): Promise<{ name: string; memory: Record<string, number>; logEntries: number | null }> {
  try {
    const response = await authorizedFetch(`${cluster.url(name)}/v1/node`, {
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await response.json()) as {
      memory?: Record<string, number>;
      storage?: { firstIndex: number; lastIndex: number };
    };
    const storage = body.storage;
    const logEntries = storage === undefined ? null : storage.lastIndex - storage.firstIndex + 1;
    return { name, memory: body.memory ?? {}, logEntries };
  } catch {
    return { name, memory: {}, logEntries: null };
  }
}

async function soak(options: SoakOptions): Promise<SoakReport> {
  const names = Array.from({ length: options.nodes }, (_, at) => `n${at + 1}`);
  const lab = options.partitions ? NetworkLab.create(options.nodes) : null;
  const cluster = await ProcessCluster.create(
    options.nodes,
    lab === null ? {} : { hosts: lab.hosts, launcher: (name) => lab.launcher(name) },
  );
  if (options.snapshotEvery !== null)
    cluster.clusterLines = [`snapshot_every_entries = ${options.snapshotEvery}`];
  // Ctrl-C: end the nodes this soak started (by PID), remove their directory and lab, and stop.
  const stopCluster = (): void => {
    void cluster.killAll().finally(() => {
      lab?.destroy();
      process.exit(130);
    });
  };
  process.once("SIGINT", stopCluster);
  process.once("SIGTERM", stopCluster);
  try {
    for (const name of names) cluster.start(name);
    await waitFor("one agreed primary", 30_000, () => cluster.leader(names));
    const endpoints = names.map((name) => cluster.url(name));
    const writers = new AcknowledgedWriters(endpoints, options.writesPerSecond);
    await writers.setUp();
    log(`${options.nodes} nodes up; soaking for ${options.minutes} min (seed ${options.seed})`);

    const startedMs = performance.now();
    const deadlineMs = startedMs + options.minutes * 60_000;
    const epoch = (): number => Math.floor((performance.now() - startedMs) / epochMs);
    const workload = new Workload(cluster, options.seed, { names, keys: () => epochKeys(epoch()) });
    const faults = new FaultInjector(cluster, names, options.seed + 1, log, lab);
    const maxRssMb = new Map(names.map((name) => [name, 0]));
    const sampler = setInterval(() => {
      for (const name of names) {
        const mb = rssMb(cluster.processes.get(name)?.child.pid);
        if (mb > (maxRssMb.get(name) ?? 0)) maxRssMb.set(name, mb);
      }
    }, 1_000);
    const progress = setInterval(() => {
      const { ok, unknown } = workload.counters;
      const rss = names.map((name) => rssMb(cluster.processes.get(name)?.child.pid).toFixed(0)).join("/");
      log(
        `${Math.round((performance.now() - startedMs) / 1000)} s: ${writers.counts.kvAcknowledged + writers.counts.sqlAcknowledged} writes acknowledged, ${ok} checked operations (${unknown} unknown), ${faults.faults.length} faults, RSS MB ${rss}`,
      );
    }, 30_000);
    const faulting = options.faults ? faults.run(deadlineMs) : delay(deadlineMs - performance.now());
    try {
      await Promise.all([workload.run(faulting), writers.run(faulting)]);
    } finally {
      clearInterval(progress);
    }
    const soakedMs = performance.now() - startedMs;
    log("faults over; healing and checking");

    await waitFor("one agreed primary after healing", 30_000, () => cluster.leader(names));
    const finalReads = Array.from({ length: epoch() + 1 }, (_, at) => epochKeys(at)).flat();
    let finalReadsDone = 0;
    for (const key of finalReads) {
      if (await workload.runUntilComplete(0, { op: "get", key }, 20)) finalReadsDone++;
    }
    workload.close();
    clearInterval(sampler);

    const checkStartedMs = performance.now();
    const history = workload.history();
    const linearizability = checkLinearizability(history, kvModel, { timeBudgetMs: 120_000 });
    const checkMs = performance.now() - checkStartedMs;
    log(
      `linearizability: ${linearizability.result} (${history.length} operations, ${Math.round(checkMs)} ms)`,
    );

    const database = await converge(cluster, names);
    const memoryAtEnd = await Promise.all(names.map((name) => nodeMemory(cluster, name)));
    const members: MemberFindings[] = [];
    for (const name of names) {
      members.push(await writers.checkMember(name, endpoints[names.indexOf(name)] as string));
    }
    return {
      options,
      soakedMs,
      faults: faults.faults,
      unexpectedExits: faults.unexpectedExits,
      writes: writers.counts,
      acknowledgedAtMs: writers.acknowledgedAtMs,
      workload: { ...workload.counters, historyLength: history.length },
      finalReads: { asked: finalReads.length, done: finalReadsDone },
      linearizability: {
        result: linearizability.result,
        detail:
          linearizability.result === "violation"
            ? linearizability.explanation
            : linearizability.result === "unknown"
              ? linearizability.reason
              : "",
        checkMs,
      },
      database,
      members,
      maxRssMb,
      memoryAtEnd,
    };
  } finally {
    process.removeListener("SIGINT", stopCluster);
    process.removeListener("SIGTERM", stopCluster);
    await cluster.killAll();
    lab?.destroy();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseSoakOptions(argv);
  if (!parsed.ok) {
    console.error(`${parsed.message}\n\n${usage}`);
    return 2;
  }
  if (parsed.options.help) {
    console.log(usage);
    return 0;
  }
  const noLab = parsed.options.partitions ? networkLabUnavailable() : null;
  if (noLab !== null) {
    console.error(`--partitions on cannot run here: ${noLab}`);
    return 2;
  }
  const report = await soak(parsed.options);
  const { markdown, passed } = renderReport(report);
  console.log(markdown);
  console.log(`written: ${writeReport(report.options, markdown)}`);
  return passed ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
