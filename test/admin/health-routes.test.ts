/**
 * Health endpoints on a real 3-node cluster in one process: `primary` is 200 on the primary
 * only, `standby` on secondaries only (with a lag bound), `ready` on every member, HEAD works,
 * no token is needed, every answer says why, and a bad `lag` is a 400 naming the parameter.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { InProcessCluster, type TestNode } from "./node-fixture.ts";

interface HealthBody {
  status: string;
  node: string;
  state: string;
  leader: string | null;
  lag: number;
  reason: string;
}

async function health(
  node: TestNode,
  path: string,
  method = "GET",
): Promise<{ status: number; body: HealthBody | null }> {
  const response = await fetch(`${node.url}${path}`, { method, signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : (JSON.parse(text) as HealthBody) };
}

describe("health endpoints", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  let leader: TestNode;

  before(async () => {
    cluster = await InProcessCluster.start(3);
    leader = await cluster.leader();
  });
  after(async () => cluster.stop());

  it("/health/primary is 200 on the primary only, and a secondary's answer names the primary", async () => {
    const onPrimary = await health(leader, "/health/primary");
    assert.equal(onPrimary.status, 200);
    assert.equal(onPrimary.body?.status, "ok");
    assert.equal(onPrimary.body?.state, "PRIMARY");
    assert.equal(onPrimary.body?.node, leader.node.nodeName);
    for (const follower of cluster.followers(leader)) {
      const answer = await health(follower, "/health/primary");
      assert.equal(answer.status, 503);
      assert.equal(answer.body?.status, "unavailable");
      assert.match(
        answer.body?.reason ?? "",
        new RegExp(`SECONDARY, not the primary \\(the primary is ${leader.node.nodeName}\\)`),
      );
    }
  });

  it("/health/standby is 200 on secondaries within the lag, 503 on the primary", async () => {
    await cluster.converged();
    for (const follower of cluster.followers(leader)) {
      assert.equal((await health(follower, "/health/standby")).status, 200);
      assert.equal(
        (await health(follower, "/health/standby?lag=0")).status,
        200,
        "a converged secondary has lag 0",
      );
    }
    const onPrimary = await health(leader, "/health/standby?lag=10");
    assert.equal(onPrimary.status, 503);
    assert.match(onPrimary.body?.reason ?? "", /is the primary, not a standby/);
  });

  it("/health/ready and /health/live are 200 on every member, without a token; HEAD works", async () => {
    for (const member of cluster.nodes) {
      assert.equal((await health(member, "/health/ready")).status, 200);
      assert.equal((await health(member, "/health/live")).status, 200);
      const head = await health(member, "/health/primary", "HEAD");
      assert.equal(head.status, member === leader ? 200 : 503);
      assert.equal(head.body, null, "HEAD has no body");
    }
  });

  it("a bad lag is a 400 naming the parameter and its range", async () => {
    for (const bad of ["-1", "abc", "1.5", "99999999999999"]) {
      const response = await fetch(`${leader.url}/health/standby?lag=${encodeURIComponent(bad)}`);
      assert.equal(response.status, 400, bad);
      assert.match(
        ((await response.json()) as { error: string }).error,
        /lag must be a whole number of entries from 0 to/,
      );
    }
  });

  it("a member that lost the primary is neither ready nor a standby", async () => {
    const [follower, other] = cluster.followers(leader) as [TestNode, TestNode];
    await leader.node.stop();
    await other.node.stop();
    const deadline = Date.now() + 10_000;
    let answer = await health(follower, "/health/ready");
    while (answer.status === 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await health(follower, "/health/ready");
    }
    assert.equal(answer.status, 503);
    assert.match(answer.body?.reason ?? "", /knows no primary/);
    assert.equal((await health(follower, "/health/standby")).status, 503);
    assert.equal((await health(follower, "/health/live")).status, 200, "still live");
  });
});
