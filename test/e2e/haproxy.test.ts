/**
 * HAProxy (Debian's package) in front of three real nodes, checking `/health/primary` every
 * 100 ms: requests through it reach the primary and only the primary; after the primary is
 * SIGKILLed they reach the new primary within 10 s, and writes through it succeed again.
 * Which node answered is read from `/health/live`'s body (no token needed), so the routing
 * assertions hold whatever `/v1/*` requires; the KV write carries the test cluster's token.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { authorizedFetch } from "./api-token.ts";
import { freePort, ProcessCluster, waitFor } from "./node-processes.ts";

const installHint = "apt-get install -y haproxy (.ci/run installs it from .ci/apt-packages)";
/** Consecutive answers from one node that show HAProxy sends everything there (3 servers, round robin). */
const answersInARow = 12;
/** Bound on the time from the primary's SIGKILL to HAProxy routing to the new primary. */
const switchTimeoutMs = 10_000;

function haproxyConfig(frontendPort: number, servers: readonly { name: string; port: number }[]): string {
  return [
    "global",
    "  maxconn 256",
    "defaults",
    "  mode http",
    "  timeout connect 1s",
    "  timeout client 10s",
    "  timeout server 10s",
    "frontend conclave",
    `  bind 127.0.0.1:${frontendPort}`,
    "  default_backend primary",
    "backend primary",
    // HTTP/1.1 with a Host header: the API answers 400 to an HTTP/1.0 check without one.
    "  option httpchk",
    "  http-check send meth GET uri /health/primary ver HTTP/1.1 hdr Host conclave",
    "  http-check expect status 200",
    "  default-server inter 100ms fall 1 rise 1",
    ...servers.map((server) => `  server ${server.name} 127.0.0.1:${server.port} check`),
    "",
  ].join("\n");
}

describe("HAProxy routes to the primary by /health/primary", { timeout: 120_000 }, () => {
  let cluster: ProcessCluster | undefined;
  let haproxy: ChildProcess | null = null;
  const haproxyOutput: string[] = [];
  let frontend = "";
  const names = ["n1", "n2", "n3"];

  before(async () => {
    const version = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
    assert.equal(version.status, 0, `haproxy is not installed: ${installHint}`);
    cluster = await ProcessCluster.create(3);
    const nodes = cluster;
    for (const name of names) nodes.start(name);
    await waitFor("a primary", 30_000, async () => nodes.leader(names));
    const port = await freePort();
    frontend = `http://127.0.0.1:${port}`;
    const config = join(nodes.root, "haproxy.cfg");
    const servers = names.map((name) => ({ name, port: nodes.spec(name).httpPort }));
    writeFileSync(config, haproxyConfig(port, servers));
    const checked = spawnSync("haproxy", ["-c", "-f", config], { encoding: "utf8" });
    assert.equal(checked.status, 0, `haproxy refused its configuration:\n${checked.stdout}${checked.stderr}`);
    haproxy = spawn("haproxy", ["-f", config, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
    const collect = (chunk: Buffer): void => {
      if (haproxyOutput.length < 200) haproxyOutput.push(chunk.toString("utf8"));
    };
    haproxy.stdout?.on("data", collect);
    haproxy.stderr?.on("data", collect);
  });

  after(async () => {
    const child = haproxy;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      process.kill(child.pid, "SIGKILL");
      await exited;
    }
    await cluster?.killAll();
  });

  /** The node (`name@host`) that answered `/health/live` through HAProxy, or null (HAProxy's 503). */
  async function answeredBy(): Promise<string | null> {
    assert.equal(haproxy?.exitCode ?? null, null, `haproxy exited:\n${haproxyOutput.join("")}`);
    try {
      const response = await fetch(`${frontend}/health/live`, { signal: AbortSignal.timeout(1000) });
      if (response.status !== 200) return null;
      return ((await response.json()) as { node: string }).node;
    } catch {
      return null;
    }
  }

  /** Waits until `answersInARow` requests in a row through HAProxy are answered by one node. */
  async function routedToOneNode(what: string, accept: (node: string) => boolean): Promise<string> {
    let node: string | null = null;
    let inARow = 0;
    return waitFor(what, switchTimeoutMs, async () => {
      const answered = await answeredBy();
      inARow = answered !== null && answered === node ? inARow + 1 : 1;
      node = answered;
      return answered !== null && accept(answered) && inARow >= answersInARow ? answered : null;
    });
  }

  it("sends requests to the primary, and to the new one after the primary is killed", async (t) => {
    const nodes = cluster as ProcessCluster;
    const first = `${await waitFor("a primary", 10_000, async () => nodes.leader(names))}@127.0.0.1`;
    assert.equal(await routedToOneNode("HAProxy to route to the primary", () => true), first);
    const put = await authorizedFetch(`${frontend}/v1/kv/through-haproxy`, { method: "PUT", body: "one" });
    assert.equal(put.status, 200, await put.text());

    const firstName = first.replace(/@.*$/, "");
    const killedAt = performance.now();
    nodes.signal(firstName, "SIGKILL");
    let firstAnswerMs: number | null = null;
    const next = await routedToOneNode("HAProxy to route to a new primary", (node) => {
      if (node === first) return false;
      firstAnswerMs ??= performance.now() - killedAt;
      return true;
    });
    const survivors = names.filter((name) => name !== firstName);
    const elected = await waitFor("the survivors to agree on a primary", 10_000, async () =>
      nodes.leader(survivors),
    );
    assert.equal(next, `${elected}@127.0.0.1`, "HAProxy sends everything to the new primary");
    t.diagnostic(
      `SIGKILL of ${first} → first answer from ${next} through HAProxy after ${Math.round(firstAnswerMs ?? 0)} ms`,
    );

    const write = await authorizedFetch(`${frontend}/v1/kv/through-haproxy`, { method: "PUT", body: "two" });
    assert.equal(write.status, 200, await write.text());
    const read = await authorizedFetch(`${frontend}/v1/kv/through-haproxy`);
    assert.equal(read.status, 200);
    assert.equal(await read.text(), "two", "the write through HAProxy is read back through it");
  });
});
