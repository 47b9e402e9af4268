/**
 * HAProxy (Debian's package) in front of three real nodes, checking `/health/primary` every
 * 100 ms: requests through it reach the primary; after the primary is SIGKILLed they reach the
 * new primary within a few seconds, and writes through it succeed again.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { authorizedFetch } from "./api-token.ts";
import { freePort, ProcessCluster, waitFor } from "./node-processes.ts";

const haproxyFound = spawnSync("haproxy", ["-v"], { encoding: "utf8" }).status === 0;

describe("HAProxy routes to the primary by /health/primary", { timeout: 120_000 }, () => {
  let cluster: ProcessCluster;
  let haproxy: ChildProcess | null = null;
  let frontend = "";
  const names = ["n1", "n2", "n3"];

  before(async () => {
    assert.ok(
      haproxyFound,
      "haproxy is not installed: apt-get install -y haproxy (.ci/run installs it from .ci/apt-packages)",
    );
    cluster = await ProcessCluster.create(3);
    for (const name of names) cluster.start(name);
    await waitFor("a primary", 30_000, async () => cluster.leader(names));
    const port = await freePort();
    frontend = `http://127.0.0.1:${port}`;
    const config = join(cluster.root, "haproxy.cfg");
    writeFileSync(
      config,
      [
        "global",
        "  maxconn 256",
        "defaults",
        "  mode http",
        "  timeout connect 1s",
        "  timeout client 10s",
        "  timeout server 10s",
        "frontend conclave",
        `  bind 127.0.0.1:${port}`,
        "  default_backend primary",
        "backend primary",
        // HTTP/1.1 with a Host header: the API answers 400 to a request without one.
        "  option httpchk",
        "  http-check send meth GET uri /health/primary ver HTTP/1.1 hdr Host conclave",
        "  http-check expect status 200",
        "  default-server inter 100ms fall 1 rise 1",
        ...names.map((name) => `  server ${name} 127.0.0.1:${cluster.spec(name).httpPort} check`),
        "",
      ].join("\n"),
    );
    haproxy = spawn("haproxy", ["-f", config, "-db"], { stdio: "ignore" });
  });
  after(async () => {
    if (haproxy?.pid !== undefined && haproxy.exitCode === null) {
      const exited = new Promise((resolve) => haproxy?.once("exit", resolve));
      process.kill(haproxy.pid, "SIGKILL");
      await exited;
    }
    await cluster?.killAll();
  });

  /** The node that answered `/health/primary` through HAProxy, or null. */
  async function answeredBy(): Promise<string | null> {
    try {
      const response = await fetch(`${frontend}/health/primary`, { signal: AbortSignal.timeout(1000) });
      if (response.status !== 200) return null;
      return ((await response.json()) as { node: string }).node;
    } catch {
      return null;
    }
  }

  it("sends requests to the primary, and to the new one after the primary is killed", async () => {
    const first = (await cluster.leader(names)) as string;
    const routed = await waitFor("HAProxy to route to the primary", 10_000, answeredBy);
    assert.equal(routed, `${first}@127.0.0.1`);
    assert.equal(
      (await authorizedFetch(`${frontend}/v1/kv/through-haproxy`, { method: "PUT", body: "one" })).status,
      200,
    );
    cluster.signal(first, "SIGKILL");
    const killedAt = performance.now();
    const next = await waitFor("HAProxy to route to a new primary", 10_000, async () => {
      const node = await answeredBy();
      return node !== null && node !== `${first}@127.0.0.1` ? node : null;
    });
    const switchedMs = performance.now() - killedAt;
    const survivors = names.filter((name) => name !== first);
    assert.equal(
      next,
      `${await waitFor("a new primary", 10_000, async () => cluster.leader(survivors))}@127.0.0.1`,
    );
    const write = await authorizedFetch(`${frontend}/v1/kv/through-haproxy`, { method: "PUT", body: "two" });
    assert.equal(write.status, 200);
    const read = await authorizedFetch(`${frontend}/v1/kv/through-haproxy`);
    assert.equal(read.status, 200);
    assert.ok(switchedMs < 10_000, `HAProxy followed the primary in ${Math.round(switchedMs)} ms`);
  });
});
