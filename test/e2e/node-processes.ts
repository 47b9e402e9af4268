/**
 * Real `conclave start` processes on 127.0.0.1 (or on addresses of network namespaces a test made,
 * network-lab.ts) for end-to-end tests: temp data directories,
 * free ports, a generated strong cookie, log capture, HTTP helpers and bounded polling. Every
 * process is tracked by PID; `killAll()` (call it in `after()`) kills only those.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { processRuns } from "../../src/adapters/storage/data-dir-lock.ts";
import { authorizedFetch, writeTestTokenFile } from "./api-token.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const binary = join(repoRoot, "bin", "conclave.js");

/**
 * Ports handed out by freePort() to any test process on this machine: one file per port holding
 * the PID that took it. Test files run two at a time, and a port is often bound seconds after it
 * was picked (a joiner starts late): without this, another file's node could bind it meanwhile,
 * and a test would talk to that node (CI once saw a joiner answer SECONDARY: it was someone
 * else's member).
 */
const portReservations = join(tmpdir(), "conclave-test-ports");

/** Reserves `port` for this process; false when a running test process holds it. */
function reservePort(port: number): boolean {
  const file = join(portReservations, String(port));
  try {
    writeFileSync(file, String(process.pid), { flag: "wx" });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const holder = Number(readFileSync(file, "utf8"));
  if (holder === process.pid || (Number.isSafeInteger(holder) && holder > 0 && processRuns(holder)))
    return false;
  writeFileSync(file, String(process.pid)); // the holder has exited: the port is free to take
  return true;
}

/** A port that was free a moment ago (the OS picked it) and that no other running test process took. */
export async function freePort(): Promise<number> {
  mkdirSync(portReservations, { recursive: true });
  for (let attempt = 0; attempt < 50; attempt++) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (address === null || typeof address !== "object") throw new Error("no port");
    if (reservePort(address.port)) return address.port;
  }
  throw new Error("no free port that another test process has not taken");
}

export interface NodeSpec {
  readonly name: string;
  /** The address the node binds, announces and is reached at (127.0.0.1 unless a lab gave one). */
  readonly host: string;
  readonly clusterPort: number;
  readonly httpPort: number;
  readonly dataDir: string;
}

export interface NodeProcess {
  readonly spec: NodeSpec;
  readonly child: ChildProcess;
  readonly output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Null while running. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

export interface StatusBody {
  readonly node: string;
  readonly raftId: string;
  readonly state: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
}

/** Where a cluster's nodes run: their addresses, and a command that puts a process there. */
export interface Placement {
  /** One address per node, n1 first (default: 127.0.0.1 for all). */
  readonly hosts?: readonly string[];
  /** Words run before `node`, e.g. `ip netns exec <namespace>`; that command must exec, keeping the PID. */
  readonly launcher?: (name: string) => readonly string[];
}

/** Changes to a node's generated configuration. */
export interface ConfigOverrides {
  nodeName?: string;
  cookie?: string;
  /** No member list and `cluster.bootstrap = true`: the node founds a one-node cluster. */
  bootstrapAlone?: boolean;
  /** PEM file paths for a `[tls]` section with mutual TLS. */
  tls?: { cert: string; key: string; ca: string };
  /** `cluster.mode = "standalone"`: no cookie, no member list, no cluster port in use. */
  standalone?: boolean;
  /** No member list and no bootstrap: the node starts STANDBY and waits for `conclave join`. */
  joiner?: boolean;
  /** Extra `[node]` lines, e.g. `role = "standby"` or `primary_priority = 50`. */
  nodeLines?: readonly string[];
  /** Leave `node.name` out (allowed in standalone mode only: the Raft id is then "standalone"). */
  unnamed?: boolean;
}

/** A test cluster of `count` nodes n1..nN sharing one cookie and one static member list. */
export class ProcessCluster {
  readonly root: string;
  readonly cookie = randomBytes(32).toString("base64url");
  readonly specs: NodeSpec[] = [];
  readonly processes = new Map<string, NodeProcess>();
  readonly #spawned: ChildProcess[] = [];
  readonly #launcher: (name: string) => readonly string[];

  /** Extra `[cluster]` lines for every node (e.g. `snapshot_every_entries = 64`). */
  clusterLines: readonly string[] = [];

  private constructor(root: string, launcher: (name: string) => readonly string[]) {
    this.root = root;
    this.#launcher = launcher;
  }

  static async create(count: number, placement: Placement = {}): Promise<ProcessCluster> {
    const root = mkdtempSync(join(tmpdir(), "conclave-e2e-"));
    const cluster = new ProcessCluster(root, placement.launcher ?? (() => []));
    writeTestTokenFile(cluster.root);
    for (let i = 1; i <= count; i++) {
      cluster.specs.push({
        name: `n${i}`,
        host: placement.hosts?.[i - 1] ?? "127.0.0.1",
        clusterPort: await freePort(),
        httpPort: await freePort(),
        dataDir: join(cluster.root, `n${i}`),
      });
    }
    return cluster;
  }

  spec(name: string): NodeSpec {
    const spec = this.specs.find((candidate) => candidate.name === name);
    if (spec === undefined) throw new Error(`no node ${name}`);
    return spec;
  }

  /** The base URL of node `name`'s HTTP API. */
  url(name: string): string {
    const spec = this.spec(name);
    return `http://${spec.host}:${spec.httpPort}`;
  }

  /** Writes node `name`'s configuration file; `overrides` replace the name or cookie. */
  writeConfig(name: string, overrides: ConfigOverrides = {}): string {
    const spec = this.spec(name);
    const members =
      overrides.bootstrapAlone || overrides.joiner
        ? ""
        : this.specs.map((s) => `"${s.name}@${s.host}:${s.clusterPort}"`).join(", ");
    const file = join(this.root, `${name}.toml`);
    writeFileSync(
      file,
      [
        "[node]",
        ...(overrides.unnamed ? [] : [`name = "${overrides.nodeName ?? spec.name}@${spec.host}"`]),
        `data_dir = "${spec.dataDir}"`,
        ...(overrides.nodeLines ?? []),
        "[cluster]",
        ...(overrides.standalone
          ? [`mode = "standalone"`]
          : [
              `cookie = "${overrides.cookie ?? this.cookie}"`,
              `members = [${members}]`,
              ...(overrides.bootstrapAlone ? ["bootstrap = true"] : []),
            ]),
        `port = ${spec.clusterPort}`,
        `bind = "${spec.host}"`,
        ...this.clusterLines,
        "[http]",
        `port = ${spec.httpPort}`,
        `bind = "${spec.host}"`,
        `token_file = "${join(this.root, "api-token")}"`,
        ...(overrides.tls
          ? [
              "[tls]",
              "enabled = true",
              `cert = "${overrides.tls.cert}"`,
              `key = "${overrides.tls.key}"`,
              `ca = "${overrides.tls.ca}"`,
              "require_client_cert = true",
            ]
          : []),
        "[log]",
        `level = "info"`,
        "",
      ].join("\n"),
    );
    return file;
  }

  /** Spawns `conclave start` for node `name`. */
  start(name: string, overrides: ConfigOverrides = {}): NodeProcess {
    const config = this.writeConfig(name, overrides);
    const [command, ...prefix] = [...this.#launcher(name), process.execPath];
    const child = spawn(command as string, [...prefix, binary, "start", "--config", config], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: withoutConclaveVariables(process.env),
    });
    this.#spawned.push(child);
    const output: string[] = [];
    const collect = (chunk: Buffer): void => {
      output.push(
        ...chunk
          .toString("utf8")
          .split("\n")
          .filter((line) => line !== ""),
      );
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const node: NodeProcess = {
      spec: this.spec(name),
      child,
      output,
      exit: null,
      exited: new Promise((resolve) => {
        child.once("exit", (code, signal) => {
          node.exit = { code, signal };
          resolve({ code, signal });
        });
      }),
    };
    this.processes.set(name, node);
    return node;
  }

  node(name: string): NodeProcess {
    const node = this.processes.get(name);
    if (node === undefined) throw new Error(`node ${name} was not started`);
    return node;
  }

  /** Sends `signal` to node `name`'s process, by its PID. */
  signal(name: string, signal: NodeJS.Signals): void {
    const pid = this.node(name).child.pid;
    if (pid !== undefined) process.kill(pid, signal);
  }

  /** GET /v1/status of node `name`, or null when it does not answer within 500 ms. */
  async status(name: string): Promise<StatusBody | null> {
    try {
      const response = await authorizedFetch(`${this.url(name)}/v1/status`, {
        signal: AbortSignal.timeout(500),
      });
      return response.ok ? ((await response.json()) as StatusBody) : null;
    } catch {
      return null;
    }
  }

  async put(name: string, key: string, value: string): Promise<Response> {
    return authorizedFetch(`${this.url(name)}/v1/kv/${encodeURIComponent(key)}`, {
      method: "PUT",
      body: value,
      signal: AbortSignal.timeout(5000),
    });
  }

  /** GET a key; `local` reads this node's state machine without asking the leader (possibly stale). */
  async get(
    name: string,
    key: string,
    consistency: "linearizable" | "local" = "linearizable",
  ): Promise<Response> {
    const query = consistency === "local" ? "?consistency=local" : "";
    return authorizedFetch(`${this.url(name)}/v1/kv/${encodeURIComponent(key)}${query}`, {
      signal: AbortSignal.timeout(5000),
    });
  }

  /** The one node that reports itself leader among `names`, agreed on by every answering node. */
  async leader(names: readonly string[]): Promise<string | null> {
    const statuses = await Promise.all(names.map((name) => this.status(name)));
    const leaders = statuses.filter((status) => status?.role === "leader");
    if (leaders.length !== 1) return null;
    const leader = leaders[0] as StatusBody;
    const agreed = statuses.every((status) => status !== null && status.leader === leader.raftId);
    return agreed ? leader.raftId : null;
  }

  /** Kills every process this cluster spawned (by PID) and removes its directory. */
  async killAll(): Promise<void> {
    for (const child of this.#spawned) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
      try {
        process.kill(child.pid, "SIGCONT");
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await Promise.all(
      this.#spawned.map((child) =>
        child.exitCode !== null || child.signalCode !== null
          ? undefined
          : new Promise((resolve) => child.once("exit", resolve)),
      ),
    );
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * Waits for a primary that every one of `members` agrees on and returns it; when none comes in
 * time, prints each node's status and the end of its log (what a failed CI run needs) and fails.
 */
export async function agreedPrimary(
  cluster: ProcessCluster,
  members: readonly string[],
  what: string,
  timeoutMs = 15_000,
): Promise<string> {
  try {
    return await waitFor(what, timeoutMs, () => cluster.leader(members));
  } catch (error) {
    for (const [name, node] of cluster.processes) {
      console.log(
        `# ${name} status ${JSON.stringify(await cluster.status(name))} exit ${JSON.stringify(node.exit)}`,
      );
      for (const line of node.output.slice(-20)) console.log(`#   ${line}`);
    }
    throw error;
  }
}

/** Polls `check` every `everyMs` until it returns a value other than null/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | null | false>,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}

function withoutConclaveVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("CONCLAVE_")));
}
