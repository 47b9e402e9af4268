/**
 * A Conclave cluster of real `conclave start` processes on 127.0.0.1, configured the way the
 * end-to-end tests do it (a generated TOML per node, one strong random cookie, a static member
 * list, OS-picked ports, fresh temp data dirs) with the default `lan` timing and logs at warn.
 * Conclave acknowledges a write only once a quorum has fsynced it; that is its only mode.
 */

import { type ChildProcess, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { missingServerEnvironment, serverNodeFlags } from "../../scripts/server-node-flags.mjs";
import type { CpuScheduling } from "../../src/cli/cpu-scheduling.ts";
import {
  type BenchCluster,
  clusterStartMsMax,
  controlJson,
  type DurableCounters,
  scrapeDurableCounters,
} from "./cluster.ts";
import type { Endpoint } from "./http-client.ts";
import {
  freePort,
  isRunning,
  killProcess,
  makeTempDir,
  removeTempDir,
  runningPid,
  spawnServer,
  terminateProcess,
  waitFor,
} from "./processes.ts";
import { type SlowRequestLine, slowRequestLines } from "./request-steps.ts";

/** The repository root (bench/compare/ is two levels down). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * How servers run: the JavaScript that tsc emits into dist/ with the server's V8 flags, as an
 * installed package runs (default), or the TypeScript sources through bin/conclave.js, as
 * `conclave` runs in a checkout (`--source`; about 30 MB more RSS per node for type stripping).
 */
let runFromSource = false;
let extraNodeFlags: readonly string[] = [];
/** Every server logs every request's steps (`--trace-steps`). */
let traceRequests = false;
/** `node.cpu_scheduling` of every server (`--conclave-cpu-scheduling`; "batch" is the default). */
let cpuScheduling: CpuScheduling = "batch";

/**
 * Chooses sources or dist/ for every server started after this; dist/ is built here, once.
 * `traceSteps`: servers log every request's steps (log.slow_request_ms = 0); `scheduling`: their
 * `node.cpu_scheduling` (written only when not the default, which builds before it lack).
 */
export function prepareServerEntry(
  source: boolean,
  nodeFlags: readonly string[] = [],
  traceSteps = false,
  scheduling: CpuScheduling = "batch",
): void {
  runFromSource = source;
  extraNodeFlags = nodeFlags;
  traceRequests = traceSteps;
  cpuScheduling = scheduling;
  if (!source) buildDist(repoRoot);
}

/** Builds `checkout`'s dist/ with its own tsc and tsconfig.build.json (`npm run build`). */
export function buildDist(checkout: string): void {
  const tsc = join(checkout, "node_modules", "typescript", "bin", "tsc");
  const built = spawnSync(process.execPath, [tsc, "-p", join(checkout, "tsconfig.build.json")], {
    cwd: checkout,
    encoding: "utf8",
  });
  if (built.status !== 0) {
    throw new Error(
      `building ${checkout}/dist failed (npm run build): ${built.stdout}${built.stderr}`.trim(),
    );
  }
}

/**
 * The command line before `start`: Node's arguments and the entry script of `checkout`;
 * `ownFlags` come after every other flag (this cluster's alone, e.g. bench:ab's change build).
 */
function serverCommand(checkout: string, ownFlags: readonly string[]): string[] {
  // bin/conclave.js adds the server's V8 flags itself (it re-executes with them).
  if (runFromSource) return [...extraNodeFlags, ...ownFlags, join(checkout, "bin", "conclave.js")];
  return [...serverNodeFlags, ...extraNodeFlags, ...ownFlags, join(checkout, "dist", "cli", "main.js")];
}

/** package.json's version and the checkout's commit (when git answers). */
export function conclaveVersion(): string {
  const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
  let commit = "";
  try {
    commit = readFileSync(join(repoRoot, ".git", "HEAD"), "utf8").trim();
    if (commit.startsWith("ref: "))
      commit = readFileSync(join(repoRoot, ".git", commit.slice(5)), "utf8").trim();
  } catch {
    commit = "";
  }
  return commit === "" ? version : `${version} (${commit.slice(0, 10)})`;
}

/** The fields of GET /v1/status the bench reads. */
interface StatusBody {
  readonly raftId?: string;
  readonly role?: string;
  readonly state?: string;
  readonly leader?: string | null;
}

interface Member {
  readonly name: string;
  readonly clusterPort: number;
  readonly httpPort: number;
  readonly dataDir: string;
  child: ChildProcess | null;
}

function logSize(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/** One API token file for every member (`http.token_file`), so the token is known before start. */
const tokenFileName = "api-token";

function isPrimary(status: StatusBody | null): boolean {
  const role = (status?.role ?? "").toLowerCase();
  return status?.state === "PRIMARY" || role === "leader" || role === "primary";
}

export class ConclaveCluster implements BenchCluster {
  readonly system = "conclave" as const;
  readonly size: number;
  /** The checkout whose server runs (this one by default; bench:ab runs another build too). */
  readonly checkout: string;
  /** Node flags for this cluster's servers only, after all others. */
  readonly nodeFlags: readonly string[];
  readonly #members: Member[] = [];
  readonly #cookie = randomBytes(32).toString("base64url");
  #root = "";
  #logMarks: number[] = [];

  constructor(size: number, checkout: string = repoRoot, nodeFlags: readonly string[] = []) {
    this.size = size;
    this.checkout = checkout;
    this.nodeFlags = nodeFlags;
  }

  async start(): Promise<void> {
    this.#root = makeTempDir("conclave-bench-conclave-");
    writeFileSync(join(this.#root, tokenFileName), `bench_${randomBytes(24).toString("base64url")}\n`, {
      mode: 0o600,
    });
    for (let i = 1; i <= this.size; i++) {
      this.#members.push({
        name: `n${i}`,
        clusterPort: await freePort(),
        httpPort: await freePort(),
        dataDir: join(this.#root, `n${i}`),
        child: null,
      });
    }
    for (let at = 0; at < this.size; at++) this.#spawn(at);
    await waitFor("a Conclave primary agreed by every member", clusterStartMsMax, async () => {
      this.#failIfAMemberExited();
      const statuses = await Promise.all(this.#members.map((_, at) => this.#status(at)));
      const answering = statuses.every((status) => typeof status?.leader === "string");
      return answering && (await this.leader()) !== null ? true : null;
    });
  }

  /**
   * A member that exited while the cluster starts never answers: fail at once with the end of
   * its log instead of after the start timeout. (Seen once: a port that freePort handed out was
   * taken meanwhile by an outgoing connection's local port; the caller starts a new cluster.)
   */
  #failIfAMemberExited(): void {
    for (const member of this.#members) {
      if (member.child === null || isRunning(member.child)) continue;
      const log = join(this.#root, `${member.name}.log`);
      const tail = existsSync(log) ? readFileSync(log, "utf8").slice(-600) : "(no log)";
      throw new MemberExitedError(`Conclave member ${member.name} exited while the cluster started: ${tail}`);
    }
  }

  #member(at: number): Member {
    const member = this.#members[at];
    if (member === undefined) throw new Error(`no Conclave member ${at}`);
    return member;
  }

  #writeConfig(member: Member): string {
    const members = this.#members.map((m) => `"${m.name}@127.0.0.1:${m.clusterPort}"`).join(", ");
    const file = join(this.#root, `${member.name}.toml`);
    const lines = [
      "[node]",
      `name = "${member.name}@127.0.0.1"`,
      `data_dir = "${member.dataDir}"`,
      ...(cpuScheduling === "batch" ? [] : [`cpu_scheduling = "${cpuScheduling}"`]),
      "[cluster]",
      `cookie = "${this.#cookie}"`,
      `members = [${members}]`,
      `port = ${member.clusterPort}`,
      `bind = "127.0.0.1"`,
      `timing = "lan"`,
      "[http]",
      `port = ${member.httpPort}`,
      `bind = "127.0.0.1"`,
      `token_file = "${join(this.#root, tokenFileName)}"`,
      "[log]",
      `level = "warn"`,
      ...(traceRequests ? ["slow_request_ms = 0", "slow_request_logs_per_second = 100000"] : []),
      "",
    ];
    writeFileSync(file, lines.join("\n"), { mode: 0o600 });
    return file;
  }

  #spawn(at: number): void {
    const member = this.#member(at);
    const config = this.#writeConfig(member);
    // process.execPath is Node 24 here, so bin/conclave.js runs in this PID (no re-exec wrapper)
    // and a SIGKILL of this PID kills the server itself.
    member.child = spawnServer(
      process.execPath,
      [...serverCommand(this.checkout, this.nodeFlags), "start", "--config", config],
      join(this.#root, `${member.name}.log`),
      this.checkout,
      // The malloc settings `conclave start` sets for itself (scripts/server-node-flags.mjs);
      // the variables the bench itself was started with win, so they can be tried out.
      missingServerEnvironment(process.env),
    );
  }

  #headers(_member: Member): Record<string, string> {
    const file = join(this.#root, tokenFileName);
    if (!existsSync(file)) return {};
    const token = readFileSync(file, "utf8").split("\n")[0]?.trim() ?? "";
    return token === "" ? {} : { authorization: `Bearer ${token}` };
  }

  async #status(at: number): Promise<StatusBody | null> {
    const member = this.#member(at);
    return (await controlJson(`http://127.0.0.1:${member.httpPort}/v1/status`, {
      headers: this.#headers(member),
    })) as StatusBody | null;
  }

  endpoints(): Endpoint[] {
    return this.#members.map((m) => ({
      url: new URL(`http://127.0.0.1:${m.httpPort}`),
      headers: this.#headers(m),
    }));
  }

  async leader(): Promise<number | null> {
    const statuses = await Promise.all(this.#members.map((_, at) => this.#status(at)));
    const primaries = statuses.map((status, at) => (isPrimary(status) ? at : -1)).filter((at) => at >= 0);
    if (primaries.length !== 1) return null;
    const primary = statuses[primaries[0] ?? -1];
    const agreed = statuses.every((status) => status === null || status.leader === primary?.raftId);
    return agreed ? (primaries[0] ?? null) : null;
  }

  durableCounters(): Promise<DurableCounters | null> {
    const running = this.#members.filter((member) => runningPid(member.child) !== null);
    return scrapeDurableCounters(
      running.map((member) => ({
        url: `http://127.0.0.1:${member.httpPort}/v1/metrics`,
        headers: this.#headers(member),
      })),
      ["conclave_storage_durable_writes_total"],
      ["conclave_storage_durable_write_bytes_total"],
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
    await waitFor(`Conclave member ${member + 1} serving again`, clusterStartMsMax, async () => {
      const status = await this.#status(member);
      return status?.leader ? true : null;
    });
  }

  /** Data directory of each member (the memory test reports per node). */
  memberNames(): string[] {
    return this.#members.map((m) => m.name);
  }

  /** Remembers where each member's log ends now (see requestLinesSinceMark). */
  markRequestLogs(): void {
    this.#logMarks = this.#members.map((member) => logSize(join(this.#root, `${member.name}.log`)));
  }

  /** The slow-request lines the members logged since markRequestLogs. */
  requestLinesSinceMark(): SlowRequestLine[] {
    return this.#members.flatMap((member, at) => {
      const file = join(this.#root, `${member.name}.log`);
      if (!existsSync(file)) return [];
      return slowRequestLines(
        readFileSync(file)
          .subarray(this.#logMarks[at] ?? 0)
          .toString("utf8"),
      );
    });
  }

  async stop(): Promise<void> {
    // Stopped cleanly (a node stops in well under a second), so --cpu-prof profiles get written.
    await Promise.all(
      this.#members.map((member) => (member.child === null ? null : terminateProcess(member.child, 5000))),
    );
    if (this.#root !== "") removeTempDir(this.#root);
  }
}

/** A member process exited during start (see ConclaveCluster.start): worth one more try. */
export class MemberExitedError extends Error {}
