/**
 * A network of our own for tier-3 tests (TESTING.md): one network namespace per node, joined by
 * veth pairs to a bridge in the test's namespace, and partitions made with nftables inside the
 * nodes' namespaces. Each node then has a real address of its own (10.213.X.11, .12, …) and
 * its peers reach it only through the bridge, so dropping packets by source address cuts exactly
 * the links a test names. The test process itself sits on the bridge (10.213.X.1) and is never
 * cut off: like Jepsen's clients, it can reach every node whatever the partition.
 *
 * Needs root (namespaces, links) and the `ip` (iproute2) and `nft` (nftables) commands; .ci/run
 * installs both. `networkLabUnavailable()` says why a lab cannot be made here.
 *
 * Everything is named after this process's PID (`conclave-lab-<pid>-n1`, bridge `cclbr<pid>`),
 * so concurrent test files never share a lab, and a lab left behind by a process that died is
 * removed by the next `create`. A dropped packet is dropped silently (no RST), as a cable cut or
 * a firewall would: TCP connections stall rather than fail.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { processRuns } from "../../src/adapters/storage/data-dir-lock.ts";

const namespacePrefix = "conclave-lab-";
const table = "conclave_lab";

/** The absolute path of a system command (PATH may lack the sbin directories), or null. */
function commandPath(command: string): string | null {
  const dirs = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  return dirs.map((dir) => `${dir}/${command}`).find((path) => existsSync(path)) ?? null;
}

function commandExists(command: string): boolean {
  return commandPath(command) !== null;
}

/** Runs `ip` or `nft` by absolute path; "nft" inside an `ip netns exec` is resolved as well. */
function run(command: "ip" | "nft", args: readonly string[]): string {
  const resolved = args.map((arg) => (arg === "nft" ? (commandPath("nft") ?? arg) : arg));
  return execFileSync(commandPath(command) ?? command, resolved, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Null when a lab can be made here, else why not (for a test's skip message). */
export function networkLabUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "network namespaces need root (CI runs as root)";
  if (!commandExists("ip")) return "the ip command is missing: apt-get install -y iproute2";
  if (!commandExists("nft")) return "the nft command is missing: apt-get install -y nftables";
  return null;
}

/** Removes namespaces and bridges of labs whose process is gone. */
function removeAbandonedLabs(): void {
  for (const line of run("ip", ["netns", "list"]).split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const match = new RegExp(`^${namespacePrefix}(\\d+)-`).exec(name);
    if (match === null || processRuns(Number(match[1]))) continue;
    run("ip", ["netns", "delete", name]);
  }
  for (const line of run("ip", ["-o", "link", "show", "type", "bridge"]).split("\n")) {
    const match = /^\d+: cclbr(\d+)[:@]/.exec(line);
    if (match !== null && !processRuns(Number(match[1]))) run("ip", ["link", "delete", `cclbr${match[1]}`]);
  }
}

/** A /24 in 10.213.0.0/16 that no route of this machine uses yet. */
function freeSubnet(): string {
  const routes = run("ip", ["-4", "route", "show", "table", "all"]);
  for (let attempt = 0; attempt < 250; attempt++) {
    const subnet = `10.213.${((process.pid + attempt) % 250) + 1}`;
    if (!routes.includes(`${subnet}.`)) return subnet;
  }
  throw new Error("no free 10.213.X.0/24 subnet for a network lab");
}

export class NetworkLab {
  /** The nodes' addresses, n1 first. */
  readonly hosts: readonly string[];
  readonly #names: readonly string[];
  readonly #bridge: string;
  #destroyed = false;

  private constructor(names: readonly string[], hosts: readonly string[], bridge: string) {
    this.#names = names;
    this.hosts = hosts;
    this.#bridge = bridge;
  }

  /** Namespaces for nodes n1..n`count` on a new bridge, with no partition. */
  static create(count: number): NetworkLab {
    const unavailable = networkLabUnavailable();
    if (unavailable !== null) throw new Error(unavailable);
    removeAbandonedLabs();
    const subnet = freeSubnet();
    const bridge = `cclbr${process.pid}`;
    const names = Array.from({ length: count }, (_, at) => `n${at + 1}`);
    const lab = new NetworkLab(
      names,
      names.map((_, at) => `${subnet}.${11 + at}`),
      bridge,
    );
    try {
      run("ip", ["link", "add", bridge, "type", "bridge"]);
      run("ip", ["addr", "add", `${subnet}.1/24`, "dev", bridge]);
      run("ip", ["link", "set", bridge, "up"]);
      names.forEach((name, at) => {
        const namespace = lab.namespace(name);
        const hostSide = `ccl${process.pid}${name}`;
        run("ip", ["netns", "add", namespace]);
        run("ip", ["link", "add", hostSide, "type", "veth", "peer", "name", "eth0", "netns", namespace]);
        run("ip", ["link", "set", hostSide, "master", bridge, "up"]);
        const inside = (...args: string[]): string => run("ip", ["netns", "exec", namespace, ...args]);
        const ip = commandPath("ip") ?? "ip";
        inside(ip, "addr", "add", `${lab.hosts[at]}/24`, "dev", "eth0");
        inside(ip, "link", "set", "eth0", "up");
        inside(ip, "link", "set", "lo", "up");
        inside("nft", "add", "table", "inet", table);
        inside("nft", "add", "chain", "inet", table, "input", "{ type filter hook input priority 0; }");
      });
    } catch (error) {
      lab.destroy();
      throw error;
    }
    return lab;
  }

  /** The namespace node `name` runs in. */
  namespace(name: string): string {
    return `${namespacePrefix}${process.pid}-${name}`;
  }

  /** The words that start a command inside node `name`'s namespace (`ip netns exec` keeps the PID). */
  launcher(name: string): readonly string[] {
    return [commandPath("ip") ?? "ip", "netns", "exec", this.namespace(name)];
  }

  /** One-way cut: packets from `from` no longer reach `to` (`to` can still send to `from`). */
  cut(from: string, to: string): void {
    const source = this.#host(from);
    run("ip", [
      "netns",
      "exec",
      this.namespace(to),
      "nft",
      "add",
      "rule",
      "inet",
      table,
      "input",
      "ip",
      "saddr",
      source,
      "drop",
    ]);
  }

  /** Both directions between every node of one group and every node of another. */
  partition(...groups: readonly (readonly string[])[]): void {
    for (const group of groups)
      for (const other of groups)
        if (other !== group) for (const from of group) for (const to of other) this.cut(from, to);
  }

  /** Removes every cut. */
  heal(): void {
    for (const name of this.#names)
      run("ip", ["netns", "exec", this.namespace(name), "nft", "flush", "chain", "inet", table, "input"]);
  }

  /** Deletes the namespaces and the bridge (end the processes inside first). Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const name of this.#names) {
      try {
        run("ip", ["netns", "delete", this.namespace(name)]);
      } catch {
        // never made, or already gone
      }
    }
    try {
      run("ip", ["link", "delete", this.#bridge]);
    } catch {
      // never made
    }
  }

  #host(name: string): string {
    const host = this.hosts[this.#names.indexOf(name)];
    if (host === undefined) throw new Error(`no node ${name} in this lab`);
    return host;
  }
}
