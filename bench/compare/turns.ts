/**
 * Whose turn it is: only the system being measured runs. The other cluster's members are
 * stopped with SIGSTOP while it is measured and continued with SIGCONT before its own turn
 * (`--idle-cluster paused`, the default). Why: on this 2-core machine an idle cluster is not
 * free — an idle Conclave member takes 1.5–4.8 % of a core (ticks, 50 ms heartbeats, pings),
 * an etcd member ~0.7 % — and before session 19 that CPU was taken from the system measured
 * (slightly in Conclave's favour).
 *
 * A continued cluster may elect a leader again: a Conclave member counts the time it was stopped
 * (src/runtime/tick-clock.ts: its leader's check-quorum and its followers' election timeouts
 * fire), etcd's ticker skips it. So a turn starts only once the cluster agrees on a leader and
 * every member has served a write; the test's own untimed warm-up follows.
 */
import { readFileSync } from "node:fs";
import type { BenchCluster } from "./cluster.ts";
import { clusterStartMsMax } from "./cluster.ts";
import type { KvDriver, SystemName } from "./drivers.ts";
import { makeValue } from "./load.ts";
import type { IdleCluster } from "./options.ts";
import { waitFor } from "./processes.ts";

interface Contestant {
  readonly cluster: BenchCluster;
  readonly driver: KvDriver;
  /** PIDs stopped by us, to continue (null while running). */
  stopped: number[] | null;
}

export class Turns {
  readonly #mode: IdleCluster;
  readonly #contestants = new Map<SystemName, Contestant>();
  #probes = 0;

  constructor(mode: IdleCluster) {
    this.#mode = mode;
  }

  add(cluster: BenchCluster, driver: KvDriver): void {
    this.#contestants.set(cluster.system, { cluster, driver, stopped: null });
  }

  /** Continues `system` if it was stopped (resolving once it serves), then stops the others. */
  async give(system: SystemName): Promise<void> {
    if (this.#mode === "running") return;
    const turn = this.#contestants.get(system);
    if (turn === undefined) throw new Error(`no ${system} cluster in this run`);
    if (turn.stopped !== null) {
      signal(turn.stopped, "SIGCONT");
      turn.stopped = null;
      await this.#serving(turn);
    }
    for (const other of this.#contestants.values()) {
      if (other === turn || other.stopped !== null) continue;
      const pids = other.cluster.pids();
      other.stopped = pids;
      await stopProcesses(pids, other.cluster.system);
    }
  }

  /** Continues every stopped member (before the clusters are stopped: SIGTERM waits on SIGCONT). */
  continueAll(): void {
    for (const contestant of this.#contestants.values()) {
      if (contestant.stopped === null) continue;
      signal(contestant.stopped, "SIGCONT");
      contestant.stopped = null;
    }
  }

  async #serving(turn: Contestant): Promise<void> {
    const { cluster, driver } = turn;
    await waitFor(`${cluster.system} serving again after SIGCONT`, clusterStartMsMax, async () => {
      if ((await cluster.leader()) === null) return null;
      try {
        // The driver goes round the members: one write through each.
        for (let i = 0; i < cluster.size; i++) {
          const key = `turn/${this.#probes++}`;
          await driver.put(key, makeValue(key, 16));
        }
        return true;
      } catch {
        return null;
      }
    });
  }
}

/** SIGSTOP to `pids`, resolving once every one is stopped (or gone). */
export async function stopProcesses(pids: readonly number[], what: string): Promise<void> {
  signal(pids, "SIGSTOP");
  // A signal is delivered when the process is next scheduled: the caller goes on once it is.
  await waitFor(
    `${what} stopped`,
    5000,
    async () => (pids.every((pid) => ["T", null].includes(processState(pid))) ? true : null),
    5,
  );
}

/** Sends `name` to each of `pids`; one that exited meanwhile is skipped. */
export function signal(pids: readonly number[], name: "SIGSTOP" | "SIGCONT"): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // exited meanwhile: nothing to stop or continue
    }
  }
}

/** The scheduler state in /proc/<pid>/stat ("T" stopped, "S" sleeping, "R" running), null if gone. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? null;
  } catch {
    return null;
  }
}
