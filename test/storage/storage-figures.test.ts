/**
 * Figures, printed and not asserted (timing is the machine's, not the code's): group-commit
 * throughput, raw fsync latency on this disk, and the cost of a hard-state write (the two slots
 * used here against write-temp + fsync + rename + fsync-directory). Each run is bounded in count
 * and time.
 */
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { FileStableStore } from "../../src/adapters/storage/file-stable-store.ts";
import { createFileStorage } from "../../src/adapters/storage/file-storage.ts";
import { commandEntry } from "./storage-compliance.ts";
import { temporaryDirectory } from "./storage-harnesses.ts";

const runMsMax = 700;

function percentile(samplesMs: number[], fraction: number): number {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}

function describeSamples(samplesMs: number[]): string {
  return `p50 ${percentile(samplesMs, 0.5).toFixed(3)} ms, p99 ${percentile(samplesMs, 0.99).toFixed(3)} ms (${samplesMs.length} samples)`;
}

/** Calls `once` until `countMax` samples or `runMsMax` elapse; returns per-call milliseconds. */
async function sample(countMax: number, once: (round: number) => Promise<void>): Promise<number[]> {
  const samplesMs: number[] = [];
  const startedMs = performance.now();
  for (let round = 0; round < countMax && performance.now() - startedMs < runMsMax; round += 1) {
    const beforeMs = performance.now();
    await once(round);
    samplesMs.push(performance.now() - beforeMs);
  }
  return samplesMs;
}

test("figures: group commit, fsync latency, hard-state write cost", async () => {
  const directory = await temporaryDirectory("conclave-figures-");
  try {
    for (const entriesPerSync of [1, 64, 1024]) {
      const storage = createFileStorage(join(directory, `group-${entriesPerSync}`));
      await storage.open();
      let nextIndex = 1;
      const samplesMs = await sample(2000, async () => {
        const batch = Array.from({ length: entriesPerSync }, (_, offset) =>
          commandEntry(nextIndex + offset, 1, 100),
        );
        nextIndex += entriesPerSync;
        storage.append(batch);
        storage.setHardState({ term: 1, vote: "n1", commit: nextIndex - 1 });
        await storage.sync();
      });
      await storage.close();
      const seconds = samplesMs.reduce((sum, ms) => sum + ms, 0) / 1000;
      const entries = samplesMs.length * entriesPerSync;
      console.log(
        `group commit ${entriesPerSync} x 100 B: ${(entries / seconds).toFixed(0)} appends/s, ` +
          `${((entries * 100) / seconds / 1e6).toFixed(2)} MB/s of payload; sync ${describeSamples(samplesMs)}`,
      );
    }

    const handle = await open(join(directory, "fsync-probe"), "w");
    const page = Buffer.alloc(4096, 7);
    const fsyncMs = await sample(300, async (round) => {
      await handle.write(page, 0, page.length, round * page.length);
      await handle.sync();
    });
    await handle.close();
    console.log(`fsync after a 4 KiB append on this disk: ${describeSamples(fsyncMs)}`);

    const stable = new FileStableStore(join(directory, "stable"));
    await stable.open();
    const slotMs = await sample(300, async (round) => {
      stable.setHardState({ term: 1, vote: "n1", commit: round + 1 });
      await stable.sync();
    });
    await stable.close();
    console.log(`hard state, two slots (pwrite + fdatasync): ${describeSamples(slotMs)}`);

    const renameDirectory = join(directory, "rename");
    const renameMs = await sample(300, async (round) => {
      if (round === 0) await mkdir(renameDirectory, { recursive: true });
      const temporary = await open(join(renameDirectory, "hardstate.tmp"), "w");
      await temporary.write(Buffer.alloc(64, round & 0xff));
      await temporary.sync();
      await temporary.close();
      await rename(join(renameDirectory, "hardstate.tmp"), join(renameDirectory, "hardstate"));
      const directoryHandle = await open(renameDirectory, "r");
      await directoryHandle.sync();
      await directoryHandle.close();
    });
    console.log(`hard state, temp + fsync + rename + fsync dir: ${describeSamples(renameMs)}`);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
