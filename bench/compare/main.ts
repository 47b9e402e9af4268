/**
 * `npm run bench:compare [-- options]`: Conclave and etcd side by side on this machine, in one
 * run, through the same client. See docs/benchmarks.md for what each figure means.
 */

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareServerEntry } from "./conclave-cluster.ts";
import { readCpuProfiles, summarizeCpuProfiles, topOfSummary } from "./cpu-profile.ts";
import { describeEnvironment } from "./environment.ts";
import { runMemoryTest } from "./memory.ts";
import { parseOptions, usage } from "./options.ts";
import { cleanUpNow } from "./processes.ts";
import { buildFigures, renderTextTable } from "./report.ts";
import {
  type ResultsDocument,
  renderCpuProfileMarkdown,
  renderMemoryMarkdown,
  renderRequestStepsMarkdown,
  writeResults,
} from "./results-file.ts";
import { runComparison } from "./scenarios.ts";
import { assessTargets, renderTargetsMarkdown } from "./targets.ts";

function log(line: string): void {
  console.error(`[bench:compare ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/**
 * The servers' profiles summed, or null with the reason logged: a profile that cannot be read
 * must not cost the run's measurements, which are written either way.
 */
function profileOf(dir: string): ResultsDocument["cpuProfile"] {
  try {
    return { dir, summary: topOfSummary(summarizeCpuProfiles(readCpuProfiles(dir)), 100) };
  } catch (error) {
    log(
      `--cpu-profile: no summary (${error instanceof Error ? error.message : String(error)}); profiles in ${dir}`,
    );
    return null;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseOptions(argv);
  if (!parsed.ok) {
    console.error(`${parsed.message}\n\n${usage}`);
    return 2;
  }
  const { options } = parsed;
  if (options.help) {
    console.log(usage);
    return 0;
  }
  const environment = describeEnvironment();
  if (!options.memory && environment.etcd === null) {
    console.error("etcd is not installed; install it with: apt-get install -y etcd-server etcd-client");
    return 2;
  }
  // Each server writes its profile when it stops (SIGTERM); the folder is kept for DevTools.
  const profileDir = options.cpuProfile ? mkdtempSync(join(tmpdir(), "conclave-bench-profiles-")) : null;
  const profileFlags = profileDir === null ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  prepareServerEntry(
    options.source,
    [...options.serverNodeFlags, ...profileFlags],
    options.traceSteps,
    options.conclaveScheduling,
  );
  log(options.source ? "Conclave runs from its TypeScript sources" : "Conclave runs from dist/ (built now)");
  const startedAt = new Date().toISOString();
  log(
    `machine: ${environment.nproc} CPUs, load ${environment.loadAverage.join(" ")}; ${environment.etcd ?? ""}`,
  );
  const measurements = options.memory ? null : await runComparison(options, log);
  const memory = options.memory ? await runMemoryTest(options.memoryKeys, log) : null;
  const doc: ResultsDocument = {
    startedAt,
    finishedAt: new Date().toISOString(),
    environment,
    options,
    figures: measurements === null ? [] : buildFigures(measurements),
    targets: measurements === null ? [] : assessTargets(measurements, options.etcdTiming),
    measurements,
    memory,
    cpuProfile: profileDir === null ? null : profileOf(profileDir),
  };
  if (doc.figures.length > 0) console.log(`\n${renderTextTable(doc.figures)}`);
  if (doc.targets.length > 0) console.log(`\n${renderTargetsMarkdown(doc.targets)}`);
  if (memory !== null) console.log(`\n${renderMemoryMarkdown(memory)}`);
  if (measurements !== null && measurements.requestSteps.length > 0)
    console.log(`\n${renderRequestStepsMarkdown(measurements.requestSteps)}`);
  if (doc.cpuProfile !== null) console.log(`\n${renderCpuProfileMarkdown(doc.cpuProfile)}`);
  const written = writeResults(doc);
  console.log(`\nwritten: ${written.markdown}\n         ${written.json}`);
  return 0;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping every server this bench started`);
    cleanUpNow();
    process.exit(130);
  });
}
process.on("exit", cleanUpNow);

main(process.argv.slice(2)).then(
  (code) => {
    cleanUpNow();
    process.exit(code);
  },
  (error: unknown) => {
    console.error(error);
    cleanUpNow();
    process.exit(1);
  },
);
