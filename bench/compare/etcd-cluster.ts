/**
 * An etcd 3.4 cluster of real `etcd` processes on 127.0.0.1 (the same command line as the etcd
 * harness's run-etcd3.sh): fresh temp data dirs, OS-picked ports, `--heartbeat-interval` and
 * `--election-timeout` as asked, logs at warn to a file. etcd's default fsync behaviour is kept.
 */

import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { type CpuScheduling, useBatchScheduling } from "../../src/cli/cpu-scheduling.ts";
import {
  type BenchCluster,
  clusterStartMsMax,
  controlJson,
  type DurableCounters,
  scrapeDurableCounters,
} from "./cluster.ts";
import type { Endpoint } from "./http-client.ts";
import type { EtcdTiming } from "./options.ts";
import {
  freePort,
  killProcess,
  makeTempDir,
  removeTempDir,
  runningPid,
  spawnServer,
  waitFor,
} from "./processes.ts";

const etcdBinary = process.env.ETCD_BIN ?? "etcd";

/** The version `etcd --version` prints first (e.g. 3.4.23), or null when etcd is not installed. */
export function etcdVersion(): string | null {
  try {
    const firstLine = execFileSync(etcdBinary, ["--version"], { encoding: "utf8", timeout: 5000 }).split(
      "\n",
    )[0];
    return firstLine?.replace(/^etcd Version:\s*/, "") ?? null;
  } catch {
    return null;
  }
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  child: ChildProcess | null;
}

export class EtcdCluster implements BenchCluster {
  readonly system = "etcd" as const;
  readonly size: number;
  readonly #timing: EtcdTiming;
  readonly #scheduling: CpuScheduling;
  readonly #members: Member[] = [];
  #root = "";

  /** `scheduling`: "batch" puts each member under SCHED_BATCH with chrt (`--etcd-cpu-scheduling`). */
  constructor(size: number, timing: EtcdTiming, scheduling: CpuScheduling = "inherit") {
    this.size = size;
    this.#timing = timing;
    this.#scheduling = scheduling;
  }

  async start(): Promise<void> {
    this.#root = makeTempDir("conclave-bench-etcd-");
    for (let i = 1; i <= this.size; i++) {
      this.#members.push({
        name: `m${i}`,
        clientPort: await freePort(),
        peerPort: await freePort(),
        child: null,
      });
    }
    for (let i = 0; i < this.size; i++) this.#spawn(i);
    await waitFor("etcd members healthy", clusterStartMsMax, async () => {
      const healthy = await Promise.all(this.#members.map((_, i) => this.#healthy(i)));
      return healthy.every(Boolean) && (await this.leader()) !== null ? true : null;
    });
  }

  #spawn(at: number): void {
    const member = this.#member(at);
    const initialCluster = this.#members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(",");
    const client = `http://127.0.0.1:${member.clientPort}`;
    const peer = `http://127.0.0.1:${member.peerPort}`;
    // --initial-cluster* are ignored once the data dir holds a WAL, so restart uses the same line.
    member.child = spawnServer(
      etcdBinary,
      [
        ...["--name", member.name, "--data-dir", join(this.#root, member.name)],
        ...["--listen-client-urls", client, "--advertise-client-urls", client],
        ...["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer],
        ...["--initial-cluster", initialCluster, "--initial-cluster-token", "conclave-bench"],
        ...["--initial-cluster-state", "new"],
        ...["--heartbeat-interval", String(this.#timing.heartbeatMs)],
        ...["--election-timeout", String(this.#timing.electionMs)],
        ...["--logger", "zap", "--log-level", "warn"],
      ],
      join(this.#root, `${member.name}.log`),
      this.#root,
    );
    // The policy survives exec, and the threads the member starts later inherit it.
    const pid = member.child.pid;
    if (this.#scheduling === "batch" && pid !== undefined) {
      const result = useBatchScheduling(pid);
      if (!result.ok) throw new Error(`--etcd-cpu-scheduling batch: ${result.reason}`);
    }
  }

  #member(at: number): Member {
    const member = this.#members[at];
    if (member === undefined) throw new Error(`no etcd member ${at}`);
    return member;
  }

  async #healthy(at: number): Promise<boolean> {
    const answer = (await controlJson(`http://127.0.0.1:${this.#member(at).clientPort}/health`)) as {
      health?: string;
    } | null;
    return answer?.health === "true";
  }

  endpoints(): Endpoint[] {
    return this.#members.map((m) => ({ url: new URL(`http://127.0.0.1:${m.clientPort}`), headers: {} }));
  }

  async leader(): Promise<number | null> {
    const statuses = (await Promise.all(
      this.#members.map((m) =>
        controlJson(`http://127.0.0.1:${m.clientPort}/v3/maintenance/status`, { method: "POST", body: "{}" }),
      ),
    )) as ({ header?: { member_id?: string }; leader?: string } | null)[];
    const leaders = statuses
      .map((status, at) =>
        status?.leader !== undefined && status.leader === status.header?.member_id ? at : -1,
      )
      .filter((at) => at >= 0);
    return leaders.length === 1 ? (leaders[0] ?? null) : null;
  }

  durableCounters(): Promise<DurableCounters | null> {
    const running = this.#members.filter((member) => runningPid(member.child) !== null);
    return scrapeDurableCounters(
      running.map((member) => ({ url: `http://127.0.0.1:${member.clientPort}/metrics`, headers: {} })),
      ["etcd_disk_wal_fsync_duration_seconds_count", "etcd_disk_backend_commit_duration_seconds_count"],
      ["etcd_disk_wal_write_bytes_total"],
    );
  }

  pids(): number[] {
    return this.#members.map((m) => runningPid(m.child)).filter((pid): pid is number => pid !== null);
  }

  pid(member: number): number | null {
    return runningPid(this.#member(member).child);
  }

  async kill(member: number): Promise<void> {
    const child = this.#member(member).child;
    if (child !== null) await killProcess(child);
  }

  async restart(member: number): Promise<void> {
    this.#spawn(member);
    await waitFor(`etcd member ${member + 1} healthy again`, clusterStartMsMax, async () =>
      (await this.#healthy(member)) ? true : null,
    );
  }

  async stop(): Promise<void> {
    for (const member of this.#members) if (member.child !== null) await killProcess(member.child);
    if (this.#root !== "") removeTempDir(this.#root);
  }
}
