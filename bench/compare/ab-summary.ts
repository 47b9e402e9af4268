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
  /** What the rounds show by {@link abRule}, for puts/s and for CPU per put. */
  readonly throughputVerdict: AbVerdict;
  readonly cpuVerdict: AbVerdict;
}

export type AbVerdict = "better" | "worse" | "no result";

/**
 * When pairs of rounds show a change rather than this machine's drift: at least `roundsMin` pairs,
 * the median ratio more than `marginMin` from 1, AND at least `shareMin` of the pairs the same way.
 * Session 23's calibration with the same code on both sides gave 1.030× and 0.996× puts/s and
 * 0.939× and 0.989× CPU per put, "faster" in 7 and 5 of 10 pairs: either condition alone is met
 * by noise (docs/benchmarks.md, "Comparing two builds").
 */
export const abRule = { marginMin: 0.05, shareMin: 0.8, roundsMin: 10 } as const;

function verdictOf(ratio: number, better: number, rounds: number, higherIsBetter: boolean): AbVerdict {
  // The rule was calibrated on 10 pairs: with 2, an A/A run "wins" both pairs often enough.
  if (rounds < abRule.roundsMin) return "no result";
  const enough = (count: number) => count >= abRule.shareMin * rounds;
  const up = ratio > 1 + abRule.marginMin;
  const down = ratio < 1 - abRule.marginMin;
  if ((higherIsBetter ? up : down) && enough(better)) return "better";
  if ((higherIsBetter ? down : up) && enough(rounds - better)) return "worse";
  return "no result";
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
  const throughputRatio = medianOf(throughputRatios);
  const cpuRatio = medianOf(cpuRatios);
  const fasterRounds = throughputRatios.filter((ratio) => ratio > 1).length;
  const cheaperRounds = cpuRatios.filter((ratio) => ratio < 1).length;
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
    throughputRatio,
    cpuRatio,
    fasterRounds,
    cheaperRounds,
    errors: [...base, ...change].reduce((sum, round) => sum + round.errors, 0),
    throughputVerdict: verdictOf(throughputRatio, fasterRounds, base.length, true),
    cpuVerdict: verdictOf(cpuRatio, cheaperRounds, base.length, false),
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
    `Verdict (more than ${abRule.marginMin * 100} % and at least ${abRule.shareMin * 100} % of at least ${abRule.roundsMin} pairs in the same direction): puts/s ${summary.throughputVerdict}; CPU per put ${summary.cpuVerdict}.`,
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
