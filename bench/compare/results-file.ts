/**
 * The results document: Markdown for people and JSON for tools, written side by side as
 * `<out-dir>/<ISO date>-<label>.md|.json`, with the date, machine, versions and options.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ProfileSummary, renderProfileMarkdown } from "./cpu-profile.ts";
import type { Environment } from "./environment.ts";
import { type MemoryResult, rssTargetMb } from "./memory.ts";
import type { CompareOptions } from "./options.ts";
import { type FigureRow, renderMarkdownTable } from "./report.ts";
import type { Measurements } from "./scenarios.ts";
import { renderTargetsMarkdown, type TargetVerdict } from "./targets.ts";

export interface ResultsDocument {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly environment: Environment;
  readonly options: CompareOptions;
  readonly figures: FigureRow[];
  /** Issue #7's targets judged from the measurements (empty for --memory). */
  readonly targets: TargetVerdict[];
  readonly measurements: Measurements | null;
  readonly memory: MemoryResult | null;
  /** With --cpu-profile: where the profiles are and what they show (null otherwise). */
  readonly cpuProfile: { readonly dir: string; readonly summary: ProfileSummary } | null;
}

/** `2025-11-22T09:30:00.000Z` → `2025-11-22T09-30-00Z` (no colons in file names). */
export function fileStamp(iso: string): string {
  return iso.replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
}

/** Writes `<outDir>/<stamp>-<label>.md` (the folder made if missing); returns its path. */
export function writeMarkdownResult(
  where: { readonly outDir: string; readonly label: string },
  startedAt: string,
  markdown: string,
): string {
  mkdirSync(where.outDir, { recursive: true });
  const path = join(where.outDir, `${fileStamp(startedAt)}-${where.label}.md`);
  writeFileSync(path, markdown);
  return path;
}

function optionsLine(options: CompareOptions): string {
  const timing = `${options.etcdTiming.heartbeatMs}/${options.etcdTiming.electionMs}`;
  const servers =
    (options.source ? " --source" : "") +
    (options.serverNodeFlags.length > 0
      ? ` --server-node-flags "${options.serverNodeFlags.join(" ")}"`
      : "") +
    (options.cpuProfile ? " --cpu-profile" : "");
  return options.memory
    ? `--memory --memory-keys ${options.memoryKeys}${servers}`
    : `--runs ${options.runs}${options.quick ? " --quick" : ""} --nodes ${options.nodes} --etcd-timing ${timing} ` +
        `--kills ${options.killsPerRun} --ops ${options.opsPerTest} --slices ${options.slices} --only ${options.only.join(",")}` +
        ` --idle-cluster ${options.idleCluster} --send-to ${options.sendTo} --client ${options.client}` +
        ` --conclave-cpu-scheduling ${options.conclaveScheduling} --etcd-cpu-scheduling ${options.etcdScheduling}${servers}`;
}

/** The memory result as a Markdown table. */
export function renderMemoryMarkdown(memory: MemoryResult): string {
  const idle = memory.samples[0] ?? [];
  const rows = Object.entries(memory.maxRssMb).map(
    ([node, mb], at) =>
      `| ${node} | ${idle[at + 1] ?? "–"} | ${mb ?? "–"} | ${mb !== null && mb < rssTargetMb ? "yes" : "no"} |`,
  );
  return [
    `${memory.keysWritten.toLocaleString("en")} of ${memory.keysAsked.toLocaleString("en")} keys (100 B values, 64 in flight) written in ${memory.wallSeconds} s (${memory.opsPerSecond} puts/s, ${memory.errors} errors)${memory.stoppedEarly === null ? "" : `; stopped early: ${memory.stoppedEarly}`}.`,
    "",
    `| node | RSS before the first write (MB) | max RSS (MB) | under ${rssTargetMb} MB |`,
    "|---|---:|---:|---|",
    ...rows,
  ].join("\n");
}

/** Where Conclave's requests spent their time, per test (`--trace-steps`). */
export function renderRequestStepsMarkdown(steps: Measurements["requestSteps"]): string {
  return [
    "## Where Conclave's requests spent their time (--trace-steps)",
    "",
    "From every request's slow-request line (log.slow_request_ms = 0), every run. A primary's steps are placed assuming the hop there took as long as the hop back.",
    ...steps.flatMap(({ test, summary }) => ["", `### ${test}`, "", summary]),
  ].join("\n");
}

/** Where Conclave's servers spent their CPU (`--cpu-profile`). */
export function renderCpuProfileMarkdown(profile: NonNullable<ResultsDocument["cpuProfile"]>): string {
  return [
    "## Where Conclave's servers spent their time (--cpu-profile)",
    "",
    `V8's CPU profiles of every server for its whole life (start, warm-up, every test), summed; in ${profile.dir}. ` +
      "V8 samples wall time: on a machine with fewer cores than busy threads, a native call during which the thread lost its core is charged with the wait.",
    "",
    renderProfileMarkdown(profile.summary, 25),
  ].join("\n");
}

export function renderMarkdown(doc: ResultsDocument): string {
  const env = doc.environment;
  const lines = [
    `# Conclave vs etcd — ${doc.options.label}, ${doc.startedAt}`,
    "",
    "| item | value |",
    "|---|---|",
    `| date | ${doc.startedAt} → ${doc.finishedAt} |`,
    `| machine | ${env.nproc} CPUs (${env.cpuModel}), ${env.memoryGiB} GiB RAM, kernel ${env.kernel}, ${env.os} |`,
    `| load average at start | ${env.loadAverage.join(", ")} |`,
    `| versions | Node ${env.node}; etcd ${env.etcd ?? "not installed"}; Conclave ${env.conclave} |`,
    `| options | \`${optionsLine(doc.options)}\` |`,
    "",
    "Medians over runs, [min–max] when they differ, and each run's own Conclave/etcd ratio (runs …); failover over every kill; lost writes summed.",
    "↑ = higher is better, ↓ = lower is better. CPU is % of one core (100 × cores = the whole machine).",
    "Disk bytes per payload byte = /proc/<pid>/io write_bytes of all servers ÷ acknowledged value bytes (an approximation of bytes fsynced).",
    "",
  ];
  if (doc.figures.length > 0) lines.push(renderMarkdownTable(doc.figures), "");
  if (doc.targets.length > 0) lines.push(renderTargetsMarkdown(doc.targets), "");
  if (doc.memory !== null)
    lines.push("## Memory (3-node Conclave)", "", renderMemoryMarkdown(doc.memory), "");
  if (doc.measurements !== null && doc.measurements.requestSteps.length > 0)
    lines.push(renderRequestStepsMarkdown(doc.measurements.requestSteps), "");
  if (doc.cpuProfile !== null) lines.push(renderCpuProfileMarkdown(doc.cpuProfile), "");
  return lines.join("\n");
}

/** Writes the document; returns the two paths. */
export function writeResults(doc: ResultsDocument): { markdown: string; json: string } {
  mkdirSync(doc.options.outDir, { recursive: true });
  const base = join(doc.options.outDir, `${fileStamp(doc.startedAt)}-${doc.options.label}`);
  const markdown = `${base}.md`;
  const json = `${base}.json`;
  writeFileSync(markdown, renderMarkdown(doc));
  writeFileSync(json, `${JSON.stringify(doc, null, 2)}\n`);
  return { markdown, json };
}
