/**
 * `npm run bench`: every benchmark, with its figures. Bounded: each part runs a fixed amount of
 * work. (Benchmarks that compare with etcd on the same machine come with the performance issue.)
 */
import { availableParallelism, cpus } from "node:os";
import { runCoreBench } from "./raft-core.ts";

console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? "?"}), Node ${process.version}`);
console.log(
  "\n== Raft core alone: 3 nodes in one process, no IO, 100-byte entries (target ≥ 500,000 entries/s)",
);
for (const batch of [1, 64, 1024]) {
  const entries = batch === 1 ? 100_000 : 1_000_000;
  const result = runCoreBench(entries, batch);
  console.log(
    `  batch ${String(batch).padStart(4)}: ${Math.round(result.entriesPerSecond).toLocaleString("en").padStart(10)} entries/s, ` +
      `${result.cpuMicrosecondsPerEntry.toFixed(2)} µs CPU per entry for the 3 nodes together (${result.entries.toLocaleString("en")} entries in ${result.seconds.toFixed(2)} s)`,
  );
}
