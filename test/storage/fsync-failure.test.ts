/**
 * A flush failing with EIO (injected by strace into a child process that uses the file storage):
 * an fsync, or a write to a file open with O_DSYNC (the log segment and the hard-state file, whose
 * writes are their own flush). The storage must fail-stop, never report the failed batch as synced, refuse every
 * later call, and the process exits non-zero. Nothing reported synced may be missing afterwards.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { createFileStorage } from "../../src/adapters/storage/file-storage.ts";
import { temporaryDirectory } from "./storage-harnesses.ts";

const childScript = join(import.meta.dirname, "fixtures", "fsync-failure-child.ts");
const childTimeoutMs = 20_000;

function straceProblem(): string | null {
  const probe = spawnSync(
    "strace",
    ["-f", "-qq", "-e", "trace=fsync", "-e", "inject=fsync:error=EIO", "true"],
    {
      encoding: "utf8",
      timeout: 10_000,
    },
  );
  if (probe.error !== undefined)
    return `strace is not available (${probe.error.message}); see .ci/apt-packages`;
  if (probe.status !== 0) return `strace cannot trace here (ptrace not permitted?): ${probe.stderr.trim()}`;
  return null;
}

interface ChildRun {
  readonly exitCode: number | null;
  readonly events: Array<Record<string, unknown>>;
  readonly stderr: string;
}

/** Runs the child under strace, making the `when`-th call of `syscall` fail with EIO. */
function runChild(directory: string, syscall: FaultedCall, when: number): Promise<ChildRun> {
  const strace = [
    "-f",
    "-qq",
    "-o",
    "/dev/null",
    "-e",
    `trace=${syscall}`,
    "-e",
    `inject=${syscall}:error=EIO:when=${when}`,
  ];
  // One libuv thread: strace counts calls per thread, and every fsync then runs on that one.
  const child = spawn("strace", [...strace, process.execPath, childScript, directory], {
    env: { ...process.env, UV_THREADPOOL_SIZE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: childTimeoutMs,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (exitCode) => {
      const events = stdout
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({ exitCode, events, stderr });
    });
  });
}

type FaultedCall = "fsync" | "pwrite64";

// Call numbers, from an strace of an unfaulted run (one libuv thread): fsync 1-2 create the
// hard-state file at open, 3-4 create the first segment (its header, then the directory).
// pwrite64 1 zeroes the new hard-state file, 2 is batch 1's hard state, 3 the segment header,
// 4 batch 1's entries, then each batch writes its entries and its hard state (5-6, 7-8, 9-10).
const cases: Array<{
  syscall: FaultedCall;
  when: number;
  hits: string;
  failedBatch: number | null;
}> = [
  { syscall: "fsync", when: 1, hits: "open (hard-state file creation)", failedBatch: null },
  { syscall: "fsync", when: 3, hits: "batch 1 (new log segment)", failedBatch: 1 },
  { syscall: "pwrite64", when: 4, hits: "batch 1 (log entries, O_DSYNC)", failedBatch: 1 },
  { syscall: "pwrite64", when: 5, hits: "batch 2 (log entries, O_DSYNC)", failedBatch: 2 },
  { syscall: "pwrite64", when: 2, hits: "batch 1 (hard state, O_DSYNC)", failedBatch: 1 },
  { syscall: "pwrite64", when: 8, hits: "batch 3 (hard state, O_DSYNC)", failedBatch: 3 },
];

test("a flush (fsync or O_DSYNC write) that fails with EIO stops the storage for good and reports no success", async (t) => {
  const problem = straceProblem();
  if (problem !== null) {
    t.skip(problem);
    return;
  }
  for (const { syscall, when, hits, failedBatch } of cases) {
    await t.test(`${syscall} #${when} fails: ${hits}`, async () => {
      const directory = await temporaryDirectory();
      try {
        const run = await runChild(directory, syscall, when);
        const context = JSON.stringify(run);
        assert.equal(run.exitCode, 3, context);
        const failure = run.events.find(
          (event) => event.event === "sync-failed" || event.event === "open-failed",
        );
        assert.ok(failure !== undefined, context);
        assert.equal(failure.code, "CONCLAVE_STORAGE_FAILED", context);
        assert.equal(
          failure.batch ?? null,
          failedBatch,
          `the fault hit another call than planned: ${context}`,
        );
        const synced = run.events
          .filter((event) => event.event === "synced")
          .map((event) => Number(event.batch));
        if (failure.event === "sync-failed") {
          assert.ok(
            !synced.includes(Number(failure.batch)),
            `the failed batch was reported synced: ${context}`,
          );
          const later = run.events.find((event) => event.event === "later-call-failed");
          assert.equal(later?.code, "CONCLAVE_STORAGE_FAILED", `a later call did not fail: ${context}`);
        }
        assert.ok(!run.events.some((event) => event.event === "done"), context);
        // Everything acknowledged as synced is there after a restart (without fault injection).
        const storage = createFileStorage(directory);
        const recovered = await storage.open();
        const lastSynced = Math.max(0, ...synced) * 10;
        assert.ok((recovered.entries.at(-1)?.index ?? 0) >= lastSynced, context);
        assert.ok((recovered.hardState?.commit ?? 0) >= lastSynced, context);
        await storage.close();
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    });
  }
});
