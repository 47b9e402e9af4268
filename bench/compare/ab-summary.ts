/**
 * What `npm run bench:ab` concludes from its rounds (pure): each build's puts/s and servers' CPU
 * per put, round by round, and the rounds compared in pairs. Pairs matter more than means on a
 * machine whose speed drifts by ±20 % within minutes: both builds of a pair ran one after the
 * other, so a change shows as the same sign in most pairs.
 */
import { median } from "./stats.ts";

/** One build's figures in one round. */
export interface AbRound {
  readonly putsPerSecond: number;
  /** All servers' CPU (user + system) per successful put, µs. */
  readonly cpuMicrosPerPut: number;
  readonly errors: number;
}

export interface AbSummary {
  readonly rounds: number;
  /** Median over rounds, per build. */
  readonly base: { readonly putsPerSecond: number; readonly cpuMicrosPerPut: number };
  readonly change: { readonly putsPerSecond: number; readonly cpuMicrosPerPut: number };
  /** Median of the per-round ratios change/base. */
  readonly throughputRatio: number;
  readonly cpuRatio: number;
  /** Rounds where the change had more puts/s, and where it used less CPU per put. */
  readonly fasterRounds: number;
  readonly cheaperRounds: number;
  readonly errors: number;
}

/** Pairs round i of each build; both lists must be the same length (at least one round). */
export function summarizeAb(base: readonly AbRound[], change: readonly AbRound[]): AbSummary {
  if (base.length === 0 || base.length !== change.length) {
    throw new Error(
      `bench:ab needs the same number of rounds of each build (${base.length} and ${change.length})`,
    );
  }
  const throughputRatios = base.map(
    (round, at) => (change[at] as AbRound).putsPerSecond / round.putsPerSecond,
  );
  const cpuRatios = base.map((round, at) => (change[at] as AbRound).cpuMicrosPerPut / round.cpuMicrosPerPut);
  const medianOf = (values: readonly number[]) => median(values) ?? 0;
  return {
    rounds: base.length,
    base: {
      putsPerSecond: medianOf(base.map((round) => round.putsPerSecond)),
      cpuMicrosPerPut: medianOf(base.map((round) => round.cpuMicrosPerPut)),
    },
    change: {
      putsPerSecond: medianOf(change.map((round) => round.putsPerSecond)),
      cpuMicrosPerPut: medianOf(change.map((round) => round.cpuMicrosPerPut)),
    },
    throughputRatio: medianOf(throughputRatios),
    cpuRatio: medianOf(cpuRatios),
    fasterRounds: throughputRatios.filter((ratio) => ratio > 1).length,
    cheaperRounds: cpuRatios.filter((ratio) => ratio < 1).length,
    errors: [...base, ...change].reduce((sum, round) => sum + round.errors, 0),
  };
}

/** The summary and every round, as Markdown (also what is printed). */
export function renderAb(
  summary: AbSummary,
  base: readonly AbRound[],
  change: readonly AbRound[],
  names: { readonly base: string; readonly change: string },
): string {
  const ratio = (value: number) => `${value.toFixed(3)}×`;
  const lines = [
    `| | ${names.base} (base) | ${names.change} (change) | change/base, median of the ${summary.rounds} paired rounds |`,
    "|---|---|---|---|",
    `| puts/s, median | ${Math.round(summary.base.putsPerSecond)} | ${Math.round(summary.change.putsPerSecond)} | ${ratio(summary.throughputRatio)}; more puts/s in ${summary.fasterRounds} of ${summary.rounds} rounds |`,
    `| servers' CPU µs per put, median | ${Math.round(summary.base.cpuMicrosPerPut)} | ${Math.round(summary.change.cpuMicrosPerPut)} | ${ratio(summary.cpuRatio)}; less CPU in ${summary.cheaperRounds} of ${summary.rounds} rounds |`,
    "",
    "| round | base puts/s | change puts/s | base µs/put | change µs/put |",
    "|---|---|---|---|---|",
    ...base.map((round, at) => {
      const other = change[at] as AbRound;
      return `| ${at + 1} | ${round.putsPerSecond} | ${other.putsPerSecond} | ${round.cpuMicrosPerPut} | ${other.cpuMicrosPerPut} |`;
    }),
  ];
  if (summary.errors > 0) lines.push("", `${summary.errors} puts failed (not counted in puts/s).`);
  return lines.join("\n");
}
