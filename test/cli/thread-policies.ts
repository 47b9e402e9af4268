/**
 * The scheduling policy of each thread of a process, from /proc, for the tests of
 * `node.cpu_scheduling` (src/cli/cpu-scheduling.ts).
 */
import { readdirSync, readFileSync } from "node:fs";

/** Linux's SCHED_BATCH, as /proc/<pid>/task/<tid>/stat reports a thread's policy. */
export const schedBatch = 3;

/**
 * The scheduling policy of each thread of process `pid` (field 41 of /proc/<pid>/task/<tid>/stat),
 * or null where /proc cannot tell (not Linux, the process is gone).
 */
export function threadPolicies(pid: number): number[] | null {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const policies: number[] = [];
  for (const task of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
    } catch {
      continue; // the thread ended meanwhile
    }
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    policies.push(Number(fields[41 - 3]));
  }
  return policies;
}
