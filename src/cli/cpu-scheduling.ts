/**
 * The server's CPU scheduling policy (`node.cpu_scheduling`, default "batch"): on Linux,
 * `conclave start` puts its own process under SCHED_BATCH before the node starts.
 *
 * Why: a member's work is a chain of wake-ups: a socket write wakes a peer or a client, a log
 * write wakes a thread of libuv's pool, whose end wakes the main thread again. Under the normal
 * policy a woken thread preempts the one that woke it, so on a machine with fewer cores than
 * busy threads (three members and their clients on two cores, or a node beside its
 * application) the writer loses its core in the middle of its turn, at every write. SCHED_BATCH
 * is the same fair scheduler without that wake-up preemption: a woken member runs when the
 * running thread's slice ends or a core is free, a few milliseconds at most, far below an
 * election timeout. Measured with `npm run bench:ab` (10 paired rounds, docs/benchmarks.md,
 * session 32): put ×64 1.069× puts/s (10 of 10 rounds) and 0.896× servers' CPU per put (9 of
 * 10); put ×256 unchanged, one request at a time 1.02×. An idle core is taken at once under
 * either policy.
 *
 * Linux has no call for it in Node, so this runs `chrt` (util-linux) once; threads started
 * later inherit the policy of the thread that starts them. "inherit" leaves the process as it
 * was started (for an operator who sets a policy of their own, or a real-time one). An embedded
 * node never changes its host process's policy: only `conclave start` calls this.
 *
 * @example
 * ```ts
 * const result = useBatchScheduling(process.pid);
 * if (!result.ok) logger.warn({ reason: result.reason }, "not under SCHED_BATCH");
 * ```
 */
import { spawnSync } from "node:child_process";

/** `node.cpu_scheduling`: SCHED_BATCH, or the policy the process was started with. */
export type CpuScheduling = "batch" | "inherit";

/** Outcome of {@link useBatchScheduling}; `reason` says why the policy is unchanged. */
export type SchedulingResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Runs a command and waits for it (spawnSync's shape; tests pass a fake). */
export type RunCommand = (
  command: string,
  args: readonly string[],
  options: { encoding: "utf8"; timeout: number },
) => {
  readonly status: number | null;
  readonly stderr?: string | null;
  readonly error?: Error | undefined;
};

/** Puts every thread of process `pid` under SCHED_BATCH (priority 0, the only one it has). */
export function useBatchScheduling(
  pid: number,
  run: RunCommand = spawnSync,
  platform: NodeJS.Platform = process.platform,
): SchedulingResult {
  if (platform !== "linux")
    return { ok: false, reason: `SCHED_BATCH is a Linux policy (this is ${platform})` };
  const result = run("chrt", ["--all-tasks", "--batch", "--pid", "0", String(pid)], {
    encoding: "utf8",
    timeout: 5000,
  });
  if (result.error !== undefined) {
    const missing = (result.error as NodeJS.ErrnoException).code === "ENOENT";
    return {
      ok: false,
      reason: missing
        ? 'chrt was not found: install util-linux, or set node.cpu_scheduling = "inherit"'
        : `chrt could not run: ${result.error.message}`,
    };
  }
  if (result.status !== 0) {
    const said = (result.stderr ?? "").trim().split("\n")[0] ?? "";
    return { ok: false, reason: `chrt exited with status ${result.status}${said === "" ? "" : `: ${said}`}` };
  }
  return { ok: true };
}
