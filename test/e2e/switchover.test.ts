/**
 * Planned switchover on real processes: `conclave set-primary` under write load hands the
 * primary role over, reports how long it took, loses no acknowledged write, and no write fails
 * for longer than the transfer; `assume-primary` on a node; refusals for a standby target; and a
 * member with a higher primary priority takes the role back by itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConclaveClient } from "../../src/client/index.ts";
import { testApiToken } from "./api-token.ts";
import { cli } from "./cli-process.ts";
import { type ConfigOverrides, ProcessCluster, waitFor } from "./node-processes.ts";

const names = ["n1", "n2", "n3"];

/** A 3-node cluster for one describe block: started before its tests (optionally until a primary is elected), killed after. */
function threeNodes(overrides: Readonly<Record<string, ConfigOverrides>> = {}, awaitPrimary = true) {
  const handle = {
    cluster: null as unknown as ProcessCluster,
    endpoint: (name: string) => `http://127.0.0.1:${handle.cluster.spec(name).httpPort}`,
  };
  before(async () => {
    handle.cluster = await ProcessCluster.create(3);
    for (const name of names) handle.cluster.start(name, overrides[name] ?? {});
    if (awaitPrimary) await waitFor("a primary", 30_000, async () => handle.cluster.leader(names));
  });
  after(async () => handle.cluster.killAll());
  return handle;
}

describe("set-primary and assume-primary", { timeout: 180_000 }, () => {
  const nodes = threeNodes();
  const endpoint = nodes.endpoint;

  it("hands the primary role over under write load, losing nothing and stalling no longer than the transfer", async () => {
    const before = (await nodes.cluster.leader(names)) as string;
    const target = names.find((name) => name !== before) as string;
    const client = new ConclaveClient({
      endpoints: names.map(endpoint),
      timeoutMs: 5000,
      token: testApiToken,
    });
    const acknowledged: string[] = [];
    let lastAckAtMs = performance.now();
    let longestStallMs = 0;
    let failures = 0;
    let writing = true;
    const writers = [0, 1, 2, 3].map(async (worker) => {
      for (let i = 0; writing && i < 100_000; i++) {
        const key = `switch/${worker}/${i}`;
        try {
          await client.kv.put(key, "v");
          const now = performance.now();
          longestStallMs = Math.max(longestStallMs, now - lastAckAtMs);
          lastAckAtMs = now;
          acknowledged.push(key);
        } catch {
          failures++;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const stallBeforeMs = longestStallMs;
      const result = await cli(["set-primary", target, "--endpoint", endpoint(target)]);
      assert.equal(result.code, 0, result.stderr);
      const match = /^(\S+) is primary \(switchover took (\d+) ms\)/.exec(result.stdout);
      assert.ok(match, result.stdout);
      assert.equal(match[1], `${target}@127.0.0.1`);
      const durationMs = Number(match[2]);
      assert.ok(durationMs < 3000, `the switchover took ${durationMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      writing = false;
      await Promise.all(writers);
      assert.equal(await nodes.cluster.leader(names), target);
      // The client retries writes refused during the transfer; the longest gap between two
      // acknowledgements is bounded by the transfer (plus a client retry and a noisy machine).
      assert.ok(
        longestStallMs <= Math.max(stallBeforeMs, durationMs) + 1500,
        `longest stall ${Math.round(longestStallMs)} ms, transfer ${durationMs} ms`,
      );
      assert.ok(acknowledged.length > 50, `${acknowledged.length} writes acknowledged (${failures} failed)`);
    } finally {
      writing = false;
    }
    for (const key of acknowledged) {
      const response = await nodes.cluster.get(target, key);
      assert.equal(response.status, 200, `${key} was acknowledged and is on the new primary`);
    }
  });

  it("assume-primary makes the node it runs on the primary", async () => {
    const current = (await nodes.cluster.leader(names)) as string;
    const other = names.find((name) => name !== current) as string;
    const result = await cli(["assume-primary", "--endpoint", endpoint(other)]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^${other}@127\\.0\\.0\\.1 is primary`));
    assert.equal(await nodes.cluster.leader(names), other);
    const again = await cli(["set-primary", other, "--endpoint", endpoint(current)]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /switchover took 0 ms/);
  });
});

describe("cluster settings", { timeout: 60_000 }, () => {
  const nodes = threeNodes();
  const endpoint = nodes.endpoint;

  it("the sync timeout is one replicated setting: set on one member, in force on all", async () => {
    const set = await cli(["settings", "--sync-timeout-ms", "700", "--endpoint", endpoint("n2")]);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), { syncTimeoutMs: 700, recoveryMessage: null });
    await waitFor("n3 to apply the setting", 5000, async () => {
      const shown = await cli(["settings", "--endpoint", endpoint("n3")]);
      return (JSON.parse(shown.stdout) as { syncTimeoutMs: number }).syncTimeoutMs === 700;
    });
    const bad = await cli(["settings", "--sync-timeout-ms", "5", "--endpoint", endpoint("n1")]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--sync-timeout-ms must be a whole number from 100 to 600000/);
    // Without a quorum, a write now gives up after about 700 ms with "outcome unknown".
    const leader = (await nodes.cluster.leader(names)) as string;
    for (const name of names.filter((candidate) => candidate !== leader))
      nodes.cluster.signal(name, "SIGSTOP");
    try {
      const started = performance.now();
      const response = await nodes.cluster.put(leader, "no-quorum", "x");
      const elapsedMs = performance.now() - started;
      assert.equal(response.status, 504);
      assert.match(((await response.json()) as { error: string }).error, /outcome is unknown|may or may not/);
      assert.ok(elapsedMs >= 600 && elapsedMs < 3000, `gave up after ${Math.round(elapsedMs)} ms`);
    } finally {
      for (const name of names.filter((candidate) => candidate !== leader))
        nodes.cluster.signal(name, "SIGCONT");
    }
  });
});

describe("roles and preferences", { timeout: 120_000 }, () => {
  const nodes = threeNodes(
    { n1: { nodeLines: ["never_primary = true"] }, n3: { nodeLines: ["primary_priority = 80"] } },
    false,
  );
  const endpoint = nodes.endpoint;

  it("the member with the highest priority takes the primary role, and never-primary members refuse it", async () => {
    await waitFor(
      "n3 (priority 80) to be primary",
      40_000,
      async () => (await nodes.cluster.leader(names)) === "n3",
    );
    const refused = await cli(["set-primary", "n1", "--endpoint", endpoint("n2")]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /n1@127\.0\.0\.1 cannot become primary: it is marked never-primary/);
    // Moved away by hand, the role comes back to n3 (it is healthy and caught up).
    const moved = await cli(["set-primary", "n2", "--endpoint", endpoint("n2")]);
    assert.equal(moved.code, 0, moved.stderr);
    await waitFor(
      "n3 to take the primary role back",
      30_000,
      async () => (await nodes.cluster.leader(names)) === "n3",
    );
  });
});
