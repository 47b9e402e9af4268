/**
 * `npm run sim -- [--seeds N] [--start S] [--seed N] [--mutation M] [--fault-ticks T] [--writes in-turn|as-runtime]`
 *
 * Runs the deterministic simulator over many seeds and prints its figures. Seeds listed in
 * regression-seeds.txt (every seed that ever failed) run first, every time. A new failing seed is
 * added to that file and the command exits 1; `--seed N` replays one seed and prints its details.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { RaftMutation } from "../raft/api-types.ts";
import { failedSeeds, formatReport, summarize } from "./report.ts";
import { runSeed, type SeedResult } from "./simulation.ts";

const regressionFile = new URL("./regression-seeds.txt", import.meta.url);
const mutations: readonly RaftMutation[] = [
  "commit-old-term-entries",
  "vote-ignores-log",
  "read-without-quorum",
  "read-ignores-durable-notices",
];

export function regressionSeeds(): number[] {
  return readFileSync(regressionFile, "utf8")
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter((line) => line !== "")
    .map(Number)
    .filter((seed) => Number.isSafeInteger(seed));
}

function fail(message: string): never {
  process.stderr.write(`sim: ${message}\n`);
  process.exit(2);
}

function positiveInteger(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0)
    fail(`${name} must be a non-negative integer, got "${value}"`);
  return parsed;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      seeds: { type: "string" },
      start: { type: "string" },
      seed: { type: "string" },
      mutation: { type: "string" },
      "fault-ticks": { type: "string" },
      writes: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: npm run sim -- [--seeds N] [--start S] [--seed N] [--mutation M] [--fault-ticks T] [--writes in-turn|as-runtime]\n" +
        `mutations (break a rule on purpose): ${mutations.join(", ")}\n`,
    );
    return;
  }
  const mutation = values.mutation as RaftMutation | undefined;
  if (mutation !== undefined && !mutations.includes(mutation)) {
    fail(`unknown mutation "${mutation}"; choose one of ${mutations.join(", ")}`);
  }
  const writes = values.writes ?? "in-turn";
  if (writes !== "in-turn" && writes !== "as-runtime") {
    fail(
      `unknown --writes "${writes}"; choose in-turn (persist, send, apply) or as-runtime (as src/runtime handles a Ready)`,
    );
  }
  const options = {
    faultTicks: positiveInteger(values["fault-ticks"], "--fault-ticks", 300),
    writes,
    ...(mutation ? { mutations: [mutation] } : {}),
  } as const;
  if (values.seed !== undefined) {
    const result = runSeed(positiveInteger(values.seed, "--seed", 0), options);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    process.exitCode = isFailure(result) ? 1 : 0;
    return;
  }
  const count = positiveInteger(values.seeds, "--seeds", 500);
  const start = positiveInteger(values.start, "--start", 1);
  const seeds = [...new Set([...(mutation ? [] : regressionSeeds()), ...range(start, count)])];
  const began = performance.now();
  const results = seeds.map((seed) => runSeed(seed, options));
  const report = summarize(results);
  process.stdout.write(
    `${mutation ? `MUTATION ${mutation}: the checks below should find violations\n` : ""}`,
  );
  process.stdout.write(`${formatReport(report, performance.now() - began)}\n`);
  const failed = failedSeeds(report);
  if (failed.length > 0 && !mutation) {
    const known = new Set(regressionSeeds());
    const fresh = failed.filter((seed) => !known.has(seed));
    if (fresh.length > 0) appendFileSync(regressionFile, fresh.map((seed) => `${seed}\n`).join(""));
    process.stdout.write(`failed seeds: ${failed.join(", ")} (replay: npm run sim -- --seed N)\n`);
    process.exitCode = 1;
  }
}

function isFailure(result: SeedResult): boolean {
  return (
    result.violations.length > 0 || result.livenessFailure !== null || result.linearizability === "violation"
  );
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

main();
