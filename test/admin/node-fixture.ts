/**
 * In-process Conclave nodes for the HTTP API tests: real `createNode` over temp data
 * directories, free loopback ports, a strong random cookie and discarded logs.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type ConclaveNode, createNode, type NodeOptions } from "../../src/conclave.ts";
import { loadConfig } from "../../src/config/index.ts";
import { authorizedFetch, writeTestTokenFile } from "../e2e/api-token.ts";
import { freePort, waitFor } from "../e2e/node-processes.ts";

const discard = new Writable({ write: (_chunk, _encoding, done) => done() });

export interface TestNode {
  readonly name: string;
  readonly node: ConclaveNode;
  readonly url: string;
}

export class InProcessCluster {
  readonly root = mkdtempSync(join(tmpdir(), "conclave-admin-"));
  readonly nodes: TestNode[] = [];

  /** Starts `count` members n1..nN (one member: a standalone node) and waits for a primary. */
  static async start(
    count: number,
    options: NodeOptions = {},
    fixture: {
      readonly sharedTokenFile?: boolean;
      /** Options of one member on top of `options` (e.g. a wall clock of its own). */
      readonly optionsOf?: (name: string) => NodeOptions;
      /** `[log]` settings on top of level "warn" (e.g. `slow_request_ms`). */
      readonly log?: Record<string, unknown>;
    } = {},
  ): Promise<InProcessCluster> {
    const cluster = new InProcessCluster();
    const cookie = randomBytes(32).toString("base64url");
    const tokenFile = writeTestTokenFile(cluster.root);
    const ports = [];
    for (let i = 1; i <= count; i++)
      ports.push({ name: `n${i}`, cluster: await freePort(), http: await freePort() });
    const members = ports.map((port) => `${port.name}@127.0.0.1:${port.cluster}`);
    for (const port of ports) {
      const config = await loadConfig({
        env: {},
        overrides: {
          node: { name: `${port.name}@127.0.0.1`, data_dir: join(cluster.root, port.name) },
          cluster:
            count === 1
              ? { mode: "standalone" }
              : { cookie, members, port: port.cluster, bind: "127.0.0.1", sync_timeout_ms: 3000 },
          http: {
            port: port.http,
            bind: "127.0.0.1",
            ...(fixture.sharedTokenFile === false ? {} : { token_file: tokenFile }),
          },
          log: { level: "warn", ...fixture.log },
        },
      });
      const node = await createNode(config, {
        logDestination: discard,
        tickIntervalMs: 10,
        ...options,
        ...fixture.optionsOf?.(port.name),
      });
      cluster.nodes.push({ name: port.name, node, url: `http://127.0.0.1:${port.http}` });
    }
    await Promise.all(cluster.nodes.map(({ node }) => node.start()));
    await cluster.leader();
    return cluster;
  }

  node(name: string): TestNode {
    const found = this.nodes.find((candidate) => candidate.name === name);
    if (found === undefined) throw new Error(`no node ${name}`);
    return found;
  }

  /** The primary every running member agrees on (waits up to 10 s). */
  async leader(): Promise<TestNode> {
    return waitFor("one agreed primary", 10_000, async () => {
      const running = this.nodes.filter(({ node }) => node.runtime.running);
      const leaders = running.filter(({ node }) => node.runtime.status().role === "leader");
      const [leader] = leaders;
      if (leaders.length !== 1 || leader === undefined) return null;
      const agreed = running.every(({ node }) => node.runtime.status().leader === leader.node.raftId);
      return agreed && leader.node.runtime.status().applied >= leader.node.runtime.status().commit
        ? leader
        : null;
    });
  }

  followers(leader: TestNode): TestNode[] {
    return this.nodes.filter((candidate) => candidate !== leader);
  }

  /** Waits until every running member applied at least the highest commit any member knows. */
  async converged(): Promise<void> {
    await this.leader();
    // The highest commit any member knows: a secondary that answered a write it forwarded may
    // know it committed before the primary does (durable notices, src/raft/DESIGN.md).
    const running = this.nodes.filter(({ node }) => node.runtime.running);
    const commit = Math.max(...running.map(({ node }) => node.runtime.status().commit));
    await waitFor(`every member to apply ${commit}`, 10_000, async () =>
      this.nodes.every(({ node }) => !node.runtime.running || node.runtime.status().applied >= commit),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map(({ node }) => node.stop()));
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** POSTs JSON and returns status and parsed body. */
export async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await authorizedFetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Rows of a query at `consistency`. */
export async function queryRows(
  url: string,
  sql: string,
  consistency = "linearizable",
): Promise<{ status: number; rows: Record<string, unknown>[]; body: Record<string, unknown> }> {
  const { status, body } = await postJson(`${url}/v1/sql/query`, { sql, consistency });
  return { status, rows: (body.rows as Record<string, unknown>[] | undefined) ?? [], body };
}
