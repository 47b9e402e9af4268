/**
 * Figures of a batch of simulated seeds, for the `npm run sim` command and the CI test.
 */
import type { SeedResult } from "./simulation.ts";

export interface SimReport {
  seeds: number;
  clusterSizes: Record<string, number>;
  faults: Record<string, number>;
  faultsTotal: number;
  invariantChecks: number;
  operations: { ok: number; failed: number; unknown: number; checked: number };
  safetyViolations: { seed: number; detail: string }[];
  linearizabilityViolations: { seed: number; detail: string }[];
  linearizabilityUnknown: number;
  livenessFailures: { seed: number; detail: string }[];
  recoveryTicks: { count: number; p50: number; p99: number; max: number };
  simulatedTicks: number;
}

export function summarize(results: readonly SeedResult[]): SimReport {
  const report: SimReport = {
    seeds: results.length,
    clusterSizes: {},
    faults: {},
    faultsTotal: 0,
    invariantChecks: 0,
    operations: { ok: 0, failed: 0, unknown: 0, checked: 0 },
    safetyViolations: [],
    linearizabilityViolations: [],
    linearizabilityUnknown: 0,
    livenessFailures: [],
    recoveryTicks: { count: 0, p50: 0, p99: 0, max: 0 },
    simulatedTicks: 0,
  };
  const recoveries: number[] = [];
  for (const result of results) {
    report.clusterSizes[result.nodes] = (report.clusterSizes[result.nodes] ?? 0) + 1;
    for (const [kind, count] of Object.entries(result.faults)) {
      report.faults[kind] = (report.faults[kind] ?? 0) + count;
      report.faultsTotal += count;
    }
    report.invariantChecks += result.invariantChecks;
    report.operations.ok += result.operations.ok;
    report.operations.failed += result.operations.failed;
    report.operations.unknown += result.operations.unknown;
    report.operations.checked += result.operations.checked;
    report.simulatedTicks += result.simulatedTicks;
    if (result.violations.length > 0)
      report.safetyViolations.push({ seed: result.seed, detail: result.violations.join("; ") });
    if (result.linearizability === "violation") {
      report.linearizabilityViolations.push({
        seed: result.seed,
        detail: result.linearizabilityDetail ?? "",
      });
    }
    if (result.linearizability === "unknown") report.linearizabilityUnknown++;
    if (result.livenessFailure !== null)
      report.livenessFailures.push({ seed: result.seed, detail: result.livenessFailure });
    recoveries.push(...result.recoveryTicks);
  }
  recoveries.sort((a, b) => a - b);
  report.recoveryTicks = {
    count: recoveries.length,
    p50: percentile(recoveries, 0.5),
    p99: percentile(recoveries, 0.99),
    max: recoveries.at(-1) ?? 0,
  };
  return report;
}

/** Seeds whose run broke a safety or liveness property. */
export function failedSeeds(report: SimReport): number[] {
  const seeds = new Set<number>();
  for (const list of [report.safetyViolations, report.linearizabilityViolations, report.livenessFailures]) {
    for (const { seed } of list) seeds.add(seed);
  }
  return [...seeds].sort((a, b) => a - b);
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export function formatReport(report: SimReport, wallMs: number): string {
  const faultLines = Object.entries(report.faults)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([kind, count]) => `    ${kind.padEnd(22)} ${count}`);
  const ops = report.operations;
  const first = (list: { seed: number; detail: string }[]): string =>
    list.length === 0 ? "" : `  (first: seed ${list[0]?.seed}: ${list[0]?.detail.slice(0, 300)})`;
  return [
    `seeds run                 ${report.seeds} (3 nodes: ${report.clusterSizes[3] ?? 0}, 5 nodes: ${report.clusterSizes[5] ?? 0}) in ${(wallMs / 1000).toFixed(1)} s`,
    `simulated time            ${report.simulatedTicks} ticks`,
    `faults injected           ${report.faultsTotal}`,
    ...faultLines,
    `invariant checks          ${report.invariantChecks}`,
    `client operations         ${ops.ok} ok, ${ops.failed} refused (never applied), ${ops.unknown} unknown outcome`,
    `operations checked for linearizability  ${ops.checked}`,
    `safety violations         ${report.safetyViolations.length}${first(report.safetyViolations)}`,
    `linearizability violations ${report.linearizabilityViolations.length}${first(report.linearizabilityViolations)}`,
    `linearizability undecided ${report.linearizabilityUnknown} (search budget reached)`,
    `liveness failures         ${report.livenessFailures.length}${first(report.livenessFailures)}`,
    `leader crash → new leader ${report.recoveryTicks.count} measured: p50 ${report.recoveryTicks.p50}, p99 ${report.recoveryTicks.p99}, max ${report.recoveryTicks.max} ticks (election timeout = 10 ticks)`,
  ].join("\n");
}
