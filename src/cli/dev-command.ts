/**
 * `conclave dev [--nodes 3]`: a whole cluster on this machine, for a first look.
 *
 * It writes one configuration per node under the dev data directory (ports offset by the node's
 * number, one shared cookie with mode 0600), starts each node as its own `conclave start` process
 * — real processes on real sockets, exactly as on three servers — waits until they elect a
 * primary, prints their status, and stops them all cleanly on Ctrl-C. Data survives between runs
 * unless `--fresh` is given.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { ConclaveError } from "../lib/errors.ts";
import { formatStatusTable, type NodeStatusRow } from "./status-table.ts";

interface DevOptions {
  nodes: string;
  data: string;
  fresh?: boolean;
  clusterPort: string;
  httpPort: string;
  readyTimeoutMs: string;
}

interface DevNode {
  readonly name: string;
  readonly configPath: string;
  readonly httpUrl: string;
  readonly logPath: string;
  process: ChildProcess | null;
}

const binPath = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "conclave.js");

export function registerDevCommand(program: Command): void {
  program
    .command("dev")
    .description("run a whole cluster on this machine (one process per node, ports offset by node number)")
    .option("-n, --nodes <count>", "how many nodes (1–9; odd counts tolerate failures best)", "3")
    .option("--data <dir>", "where the nodes keep their data and logs", ".conclave-dev")
    .option("--fresh", "wipe the dev data directory first")
    .option("--cluster-port <port>", "cluster port of the first node (node k uses port + k − 1)", "4370")
    .option("--http-port <port>", "HTTP port of the first node (node k uses port + k − 1)", "4380")
    .option("--ready-timeout-ms <ms>", "how long to wait for a primary and every node to answer", "30000")
    .action(async (options: DevOptions) => {
      await runDev(options);
    });
}

function integerOption(value: string, name: string, min: number, max: number): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new ConclaveError(
      "CONCLAVE_USAGE",
      `${name} must be a whole number from ${min} to ${max}, got "${value}".`,
    );
  }
  return parsed;
}

async function runDev(options: DevOptions): Promise<void> {
  const count = integerOption(options.nodes, "--nodes", 1, 9);
  const clusterPort = integerOption(options.clusterPort, "--cluster-port", 1, 65_000);
  const httpPort = integerOption(options.httpPort, "--http-port", 1, 65_000);
  const readyTimeoutMs = integerOption(options.readyTimeoutMs, "--ready-timeout-ms", 1000, 600_000);
  const root = resolve(options.data);
  if (options.fresh) rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const nodes = writeConfigs(root, count, clusterPort, httpPort);
  for (let k = 0; k < count; k++) {
    await assertPortFree(clusterPort + k, "--cluster-port");
    await assertPortFree(httpPort + k, "--http-port");
  }
  process.stdout.write(`Starting ${count} node${count === 1 ? "" : "s"} (data and logs in ${root})…\n`);
  // A terminal's Ctrl-C may arrive twice (directly, and forwarded by the Node 24 launcher):
  // stop once, and keep handling the signal so a second one cannot kill us mid-shutdown.
  let stopping = false;
  const stopped = new Promise<void>((resolveStopped) => {
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      process.stdout.write("\nStopping the cluster…\n");
      void stopAll(nodes).then(resolveStopped);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  for (const node of nodes) startNode(node);
  const rows = await waitForCluster(nodes, readyTimeoutMs);
  if (rows === null) {
    await stopAll(nodes);
    throw new ConclaveError(
      "CONCLAVE_DEV_NOT_READY",
      `No primary was elected within ${readyTimeoutMs} ms. See the node logs: ${nodes.map((n) => n.logPath).join(", ")}`,
    );
  }
  const primary = rows.find((row) => row.state === "PRIMARY");
  const tokenPath = join(root, "admin-token");
  process.stdout.write(`\n${formatStatusTable(rows)}\n\n`);
  process.stdout.write(
    `HTTP API: ${nodes.map((n) => n.httpUrl).join("  ")}\n` +
      `Token:    ${readFileSync(tokenPath, "utf8").trim()}   (in ${tokenPath}; every /v1 call needs it)\n` +
      `Try:      export CONCLAVE_TOKEN=$(cat ${tokenPath})\n` +
      `          npx conclave status --endpoint ${primary?.api}\n` +
      `          curl -H "Authorization: Bearer $CONCLAVE_TOKEN" -X PUT --data hello ${primary?.api}/v1/kv/greeting\n` +
      `          npx conclave sql "SELECT 1 AS one" ${nodes.map((n) => `--endpoint ${n.httpUrl}`).join(" ")}\n` +
      "Press Ctrl-C to stop the cluster (data is kept; --fresh starts over).\n",
  );
  await stopped;
  process.stdout.write("Cluster stopped.\n");
}

function writeConfigs(root: string, count: number, clusterPort: number, httpPort: number): DevNode[] {
  const cookiePath = join(root, "cookie");
  if (!existsSync(cookiePath))
    writeFileSync(cookiePath, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
  chmodSync(cookiePath, 0o600);
  const tokenPath = join(root, "admin-token");
  if (!existsSync(tokenPath))
    writeFileSync(tokenPath, `cnc_${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
  chmodSync(tokenPath, 0o600);
  const names = Array.from({ length: count }, (_, k) => `n${k + 1}`);
  const members = names.map((name, k) => `"${name}@127.0.0.1:${clusterPort + k}"`).join(", ");
  return names.map((name, k) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const configPath = join(dir, "conclave.toml");
    writeFileSync(
      configPath,
      [
        "# Written by `conclave dev`; edited copies are overwritten at the next run.",
        `port_offset = ${k}`,
        "",
        "[node]",
        `name = "${name}@127.0.0.1"`,
        `data_dir = ${JSON.stringify(join(dir, "data"))}`,
        "",
        "[cluster]",
        `cookie_file = ${JSON.stringify(cookiePath)}`,
        `members = [${members}]`,
        `port = ${clusterPort}`,
        'bind = "127.0.0.1"',
        "",
        "[http]",
        `port = ${httpPort}`,
        'bind = "127.0.0.1"',
        `token_file = ${JSON.stringify(tokenPath)}`,
        "",
      ].join("\n"),
    );
    return {
      name,
      configPath,
      httpUrl: `http://127.0.0.1:${httpPort + k}`,
      logPath: join(dir, "node.log"),
      process: null,
    };
  });
}

/** The dev cluster's token (one file shared by its nodes, next to the cookie). */
function devToken(node: DevNode): string {
  try {
    return readFileSync(join(dirname(dirname(node.configPath)), "admin-token"), "utf8").trim();
  } catch {
    return "";
  }
}

function startNode(node: DevNode): void {
  const log = openSync(node.logPath, "a");
  // Each node in its own process group, so a Ctrl-C in this terminal reaches only us and we
  // stop the nodes in order with SIGTERM.
  node.process = spawn(process.execPath, [binPath, "start", "--config", node.configPath], {
    stdio: ["ignore", log, log],
    detached: true,
  });
}

async function stopAll(nodes: readonly DevNode[]): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      const child = node.process;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((done) => child.once("exit", () => done()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
}

/**
 * Waits for a primary, for every node to answer and for no node to be campaigning, so that the
 * table shows the whole, settled cluster and Ctrl-C never lands on a node still starting (CI once
 * saw the table printed while one node had not yet opened its data directory). Past the deadline: the last rows that had a primary,
 * with the missing nodes DOWN, or null when there was none.
 */
async function waitForCluster(nodes: readonly DevNode[], timeoutMs: number): Promise<NodeStatusRow[] | null> {
  const deadline = performance.now() + timeoutMs;
  let withPrimary: NodeStatusRow[] | null = null;
  while (performance.now() < deadline) {
    const crashed = nodes.find((n) => n.process?.exitCode !== null && n.process?.exitCode !== undefined);
    if (crashed) {
      const tail = readFileSync(crashed.logPath, "utf8").trim().split("\n").slice(-3).join("\n");
      throw new ConclaveError(
        "CONCLAVE_DEV_NODE_EXITED",
        `Node ${crashed.name} exited (code ${crashed.process?.exitCode}). Last lines of ${crashed.logPath}:\n${tail}`,
      );
    }
    const rows = await Promise.all(nodes.map((node) => fetchStatus(node)));
    if (rows.some((row) => row.state === "PRIMARY")) {
      // Settled: every node answers and none is still campaigning (a node that lost a split vote
      // shows CANDIDATE until the winner's first heartbeat reaches it; a CI run printed that).
      if (rows.every((row) => row.state !== "DOWN" && row.state !== "CANDIDATE")) return rows;
      withPrimary = rows;
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  return withPrimary;
}

async function fetchStatus(node: DevNode): Promise<NodeStatusRow> {
  try {
    const response = await fetch(`${node.httpUrl}/v1/status`, {
      headers: { authorization: `Bearer ${devToken(node)}` },
      signal: AbortSignal.timeout(1000),
    });
    const body = (await response.json()) as Record<string, unknown>;
    return {
      name: String(body.name ?? node.name),
      state: typeof body.state === "string" ? body.state : "DOWN",
      term: Number(body.term ?? 0),
      commit: Number(body.commit ?? 0),
      applied: Number(body.applied ?? 0),
      api: node.httpUrl,
    };
  } catch {
    return { name: node.name, state: "DOWN", term: 0, commit: 0, applied: 0, api: node.httpUrl };
  }
}

function assertPortFree(port: number, option: string): Promise<void> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", () =>
      reject(
        new ConclaveError(
          "CONCLAVE_PORT_IN_USE",
          `Port ${port} on 127.0.0.1 is in use. Stop what uses it, or choose other ports with ${option}.`,
        ),
      ),
    );
    server.listen(port, "127.0.0.1", () => server.close(() => resolvePort()));
  });
}
