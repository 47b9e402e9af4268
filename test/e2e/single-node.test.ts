/**
 * A real node process bootstrapped alone (`cluster.bootstrap = true`, no member list): it forms a
 * one-node cluster, takes writes, keeps them across a restart, and logs JSON lines that each name
 * the node.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serverEnvironment, serverNodeFlags } from "../../scripts/server-node-flags.mjs";
import { schedBatch, threadPolicies } from "../cli/thread-policies.ts";
import { ProcessCluster, waitFor } from "./node-processes.ts";

describe("a one-node cluster", { timeout: 30_000 }, () => {
  let cluster: ProcessCluster;

  before(async () => {
    cluster = await ProcessCluster.create(1);
  });
  after(async () => {
    await cluster.killAll();
  });

  it("bootstraps alone, becomes primary and takes writes", async () => {
    cluster.start("n1", { bootstrapAlone: true });
    await waitFor("n1 to lead", 10_000, async () => (await cluster.status("n1"))?.role === "leader");
    assert.equal((await cluster.put("n1", "k", "v1")).status, 200);
    const read = await cluster.get("n1", "k");
    assert.equal(read.status, 200);
    assert.equal(await read.text(), "v1");
  });

  it("keeps its data across a restart", async () => {
    cluster.signal("n1", "SIGTERM");
    assert.equal((await cluster.node("n1").exited).code, 0);
    cluster.start("n1", { bootstrapAlone: true });
    await waitFor("n1 to lead again", 10_000, async () => (await cluster.status("n1"))?.role === "leader");
    assert.equal(await (await cluster.get("n1", "k")).text(), "v1");
  });

  it("logs JSON lines, each naming the node", () => {
    const lines = cluster.node("n1").output;
    assert.ok(lines.length > 2, "the node logged its start");
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      assert.equal(entry.node, "n1@127.0.0.1", line);
      assert.equal(typeof entry.msg, "string");
      assert.equal(typeof entry.time, "number");
    }
  });

  it("a SIGTERM while it is still starting stops it cleanly and releases its data directory", async () => {
    cluster.signal("n1", "SIGTERM");
    assert.equal((await cluster.node("n1").exited).code, 0);
    const lock = join(cluster.spec("n1").dataDir, "LOCK");
    const node = cluster.start("n1", { bootstrapAlone: true });
    // The LOCK appears when the node has its data directory and is opening storage: stop it there.
    await waitFor("n1 to take its data directory", 10_000, async () => existsSync(lock), 1);
    cluster.signal("n1", "SIGTERM");
    const exit = await node.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, node.output.join("\n"));
    assert.equal(existsSync(lock), false, "the LOCK was removed");
    cluster.start("n1", { bootstrapAlone: true });
    await waitFor(
      "n1 to lead after the interrupted start",
      10_000,
      async () => (await cluster.status("n1"))?.role === "leader",
    );
    assert.equal(await (await cluster.get("n1", "k")).text(), "v1");
  });

  it("runs in the PID it was started as, with the server's V8 flags and malloc settings", () => {
    // bin/conclave.js re-executes itself (execve) to add them: same PID, so signals still reach it.
    const pid = cluster.node("n1").child.pid;
    assert.ok(pid !== undefined);
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    for (const flag of serverNodeFlags) assert.ok(argv.includes(flag), `${flag} in ${argv.join(" ")}`);
    const environment = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    for (const [name, value] of Object.entries(serverEnvironment))
      assert.ok(environment.includes(`${name}=${value}`), `${name}=${value} in the environment`);
  });

  it("runs every thread under SCHED_BATCH, and says so in its log", {
    skip: process.platform !== "linux",
  }, () => {
    const pid = cluster.node("n1").child.pid;
    assert.ok(pid !== undefined);
    const policies = threadPolicies(pid);
    assert.ok(policies !== null && policies.length > 1, `threads: ${policies}`);
    assert.deepEqual(
      policies,
      policies.map(() => schedBatch),
    );
    assert.ok(
      cluster.node("n1").output.some((line) => line.includes('"msg":"running under SCHED_BATCH"')),
      "the start is logged",
    );
  });

  it("keeps the policy it was started with under node.cpu_scheduling = inherit", {
    skip: process.platform !== "linux",
  }, async () => {
    cluster.signal("n1", "SIGTERM");
    assert.equal((await cluster.node("n1").exited).code, 0);
    cluster.start("n1", { bootstrapAlone: true, nodeLines: ['cpu_scheduling = "inherit"'] });
    await waitFor("n1 to lead again", 10_000, async () => (await cluster.status("n1"))?.role === "leader");
    const pid = cluster.node("n1").child.pid;
    assert.ok(pid !== undefined);
    const ours = threadPolicies(process.pid)?.[0];
    assert.ok(ours !== undefined && ours !== schedBatch, "the test runs under another policy");
    assert.deepEqual(
      threadPolicies(pid),
      threadPolicies(pid)?.map(() => ours),
    );
  });
});
