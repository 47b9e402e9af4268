/** The soak's verdict and figures, as Markdown, written to `<out-dir>/<date>-<label>.md`. */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import type { MemberFindings, WriteCounts } from "./acknowledged-writes.ts";
import type { FaultKind, FaultRecord, UnexpectedExit } from "./faults.ts";
import type { SoakOptions } from "./options.ts";

export interface SoakReport {
  readonly options: SoakOptions;
  readonly soakedMs: number;
  readonly faults: readonly FaultRecord[];
  readonly unexpectedExits: readonly UnexpectedExit[];
  readonly writes: WriteCounts;
  readonly acknowledgedAtMs: readonly number[];
  readonly workload: { ok: number; refused: number; unknown: number; historyLength: number };
  readonly finalReads: { asked: number; done: number };
  readonly linearizability: { result: string; detail: string; checkMs: number };
  readonly database: {
    agreed: boolean;
    members: readonly { name: string; sha256: string; appliedIndex: number }[];
  };
  readonly members: readonly MemberFindings[];
  readonly maxRssMb: ReadonlyMap<string, number>;
  /** Each member's memory (GET /v1/node) once the checks began. */
  readonly memoryAtEnd: readonly {
    name: string;
    memory: Record<string, number>;
    logEntries: number | null;
  }[];
}

/** The first acknowledgement at or after `atMs` (times are sorted). */
function firstAfter(times: readonly number[], atMs: number): number | null {
  let low = 0;
  let high = times.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((times[middle] as number) < atMs) low = middle + 1;
    else high = middle;
  }
  return times[low] ?? null;
}

/** Per fault kind: how many, and fault → next acknowledged write (median, max). */
export function recoveryByKind(
  faults: readonly FaultRecord[],
  acknowledgedAtMs: readonly number[],
): Map<FaultKind, { count: number; medianMs: number; maxMs: number }> {
  const byKind = new Map<FaultKind, number[]>();
  for (const fault of faults) {
    const next = firstAfter(acknowledgedAtMs, fault.atMs);
    const list = byKind.get(fault.kind) ?? [];
    list.push(next === null ? Number.POSITIVE_INFINITY : next - fault.atMs);
    byKind.set(fault.kind, list);
  }
  const figures = new Map<FaultKind, { count: number; medianMs: number; maxMs: number }>();
  for (const [kind, list] of byKind) {
    list.sort((a, b) => a - b);
    figures.set(kind, {
      count: list.length,
      medianMs: list[Math.floor((list.length - 1) / 2)] as number,
      maxMs: list.at(-1) as number,
    });
  }
  return figures;
}

/** The longest time between two acknowledged writes. */
export function longestStallMs(acknowledgedAtMs: readonly number[]): number {
  let longest = 0;
  for (let at = 1; at < acknowledgedAtMs.length; at++) {
    longest = Math.max(longest, (acknowledgedAtMs[at] as number) - (acknowledgedAtMs[at - 1] as number));
  }
  return longest;
}

const ms = (value: number): string =>
  Number.isFinite(value) ? `${Math.round(value).toLocaleString("en-US")} ms` : "never";

export function renderReport(report: SoakReport): { markdown: string; passed: boolean } {
  const lost = report.members.reduce((sum, m) => sum + m.kvMissing + m.kvWrongValue + m.sqlMissing, 0);
  const duplicated = report.members.reduce((sum, m) => sum + m.sqlDuplicated, 0);
  const rssOver = [...report.maxRssMb].filter(([, mb]) => mb > report.options.rssMaxMb);
  const acknowledged = report.writes.kvAcknowledged + report.writes.sqlAcknowledged;
  const checks: [string, boolean, string][] = [
    [
      "no node stopped by itself",
      report.unexpectedExits.length === 0,
      `${report.unexpectedExits.length} unexpected exits`,
    ],
    [
      "the KV history is linearizable",
      report.linearizability.result === "ok",
      `${report.linearizability.result}, ${report.workload.historyLength} operations, checked in ${ms(report.linearizability.checkMs)}${report.linearizability.detail === "" ? "" : `: ${report.linearizability.detail.slice(0, 300)}`}`,
    ],
    [
      "every final read completed",
      report.finalReads.done === report.finalReads.asked,
      `${report.finalReads.done} of ${report.finalReads.asked}`,
    ],
    [
      "no acknowledged write lost, on any member",
      lost === 0,
      `${acknowledged} acknowledged; ${lost} missing or wrong`,
    ],
    ["no write applied twice", duplicated === 0, `${duplicated} rows written more than once`],
    [
      "every member holds the same database",
      report.database.agreed,
      report.database.members.map((m) => `${m.name} ${m.appliedIndex} ${m.sha256.slice(0, 12)}`).join(", "),
    ],
    [
      `every node's RSS stayed under ${report.options.rssMaxMb} MB`,
      rssOver.length === 0,
      [...report.maxRssMb].map(([name, mb]) => `${name} ${mb.toFixed(1)}`).join(", "),
    ],
    ["writes made progress", acknowledged > 0, `${acknowledged} acknowledged`],
  ];
  const passed = checks.every(([, ok]) => ok);
  const recovery = recoveryByKind(report.faults, report.acknowledgedAtMs);
  const failed = [...report.writes.failed].map(([code, n]) => `${code} ${n}`).join(", ") || "none";
  const o = report.options;
  const lines = [
    `# Soak ${passed ? "passed" : "FAILED"} (${new Date().toISOString()})`,
    "",
    `${o.nodes} nodes, ${(report.soakedMs / 60_000).toFixed(1)} min ${o.faults ? "under faults" : "without faults"}${o.partitions ? " (network cuts included; each node in its own network namespace)" : ""}, seed ${o.seed}, ${o.writesPerSecond} writes/s asked; machine: ${cpus().length} CPUs; Node ${process.version}.`,
    `Repeat: \`npm run soak -- --minutes ${o.minutes} --nodes ${o.nodes} --seed ${o.seed} --writes-per-second ${o.writesPerSecond}${o.faults ? "" : " --faults off"}${o.partitions ? " --partitions on" : ""}${o.snapshotEvery === null ? "" : ` --snapshot-every ${o.snapshotEvery}`}\``,
    "",
    "| check | result | detail |",
    "|---|---|---|",
    ...checks.map(
      ([name, ok, detail]) => `| ${name} | ${ok ? "yes" : "**NO**"} | ${detail.replaceAll("|", "/")} |`,
    ),
    "",
    "| fault | count | fault → next acknowledged write, median | max |",
    "|---|---:|---:|---:|",
    ...(recovery.size === 0
      ? ["| (none) | 0 | – | – |"]
      : [...recovery].map(([kind, f]) => `| ${kind} | ${f.count} | ${ms(f.medianMs)} | ${ms(f.maxMs)} |`)),
    "",
    `Writes: ${report.writes.kvAcknowledged} KV puts and ${report.writes.sqlAcknowledged} SQL inserts acknowledged; given up by the client: ${failed}. Longest time without an acknowledged write: ${ms(longestStallMs(report.acknowledgedAtMs))}.`,
    `Linearizability clients: ${report.workload.ok} operations completed, ${report.workload.refused} refused (not applied), ${report.workload.unknown} with an unknown outcome.`,
  ];
  const mb = (bytes: number | undefined): string =>
    bytes === undefined ? "?" : (bytes / 1_048_576).toFixed(1);
  lines.push(
    `Memory at the end (MB: RSS / V8 heap used of total / outside the heap / of which array buffers; then log entries held): ${report.memoryAtEnd
      .map(
        ({ name, memory: m, logEntries }) =>
          `${name} ${mb(m.rssBytes)} / ${mb(m.heapUsedBytes)} of ${mb(m.heapTotalBytes)} / ${mb(m.externalBytes)} / ${mb(m.arrayBuffersBytes)}; ${logEntries ?? "?"}`,
      )
      .join("; ")}.`,
  );
  for (const member of report.members) {
    if (member.examples.length > 0) lines.push("", `${member.name}: ${member.examples.join("; ")}`);
  }
  for (const exit of report.unexpectedExits) {
    lines.push(
      "",
      `${exit.name} exited by itself (${JSON.stringify(exit.exit)}); its last lines:`,
      "```",
      ...exit.outputTail,
      "```",
    );
  }
  return { markdown: lines.join("\n"), passed };
}

/** Writes the Markdown under `options.outDir`; the file's path. */
export function writeReport(options: SoakOptions, markdown: string): string {
  mkdirSync(options.outDir, { recursive: true });
  const stamp = new Date()
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replaceAll(":", "-");
  const file = join(options.outDir, `${stamp}-${options.label}.md`);
  writeFileSync(file, `${markdown}\n`);
  return file;
}
