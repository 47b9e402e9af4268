/**
 * Health endpoints on a real 3-node cluster in one process: `primary` is 200 on the primary
 * only, `standby` on secondaries only (with a lag bound), `ready` on every member, HEAD works,
 * no token is needed, every answer says why, and a bad `lag` is a 400 naming the parameter.
 * States a live 3-node cluster does not reach on demand (a lagging secondary, a standby that is
 * not a member, leaving, disk full, an election) are answered by the same app over a node whose
 * status the test sets.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import type { AdminContext } from "../../src/admin/admin-context.ts";
import { createAdminApp } from "../../src/admin/admin-server.ts";
import { registerHealthRoutes } from "../../src/admin/health-routes.ts";
import { HttpMetrics } from "../../src/admin/http-metrics.ts";
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
    // 50 ms ticks, as in cluster-routes.test.ts: the tests keep this leader, and with 10 ms
    // ticks a short stall of the shared event loop on a loaded machine can move leadership.
    cluster = await InProcessCluster.start(3, { tickIntervalMs: 50 });
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
      const live = await health(member, "/health/live");
      assert.equal(live.status, 200);
      assert.equal(live.body?.node, member.node.nodeName, "a load balancer can tell who answered");
      assert.equal(live.body?.leader, leader.node.nodeName);
      const head = await health(member, "/health/primary", "HEAD");
      assert.equal(head.status, member === leader ? 200 : 503);
      assert.equal(head.body, null, "HEAD has no body");
    }
  });

  it("answers an HTTP/1.0 check without a Host header (HAProxy's plain option httpchk)", async () => {
    const port = Number(new URL(leader.url).port);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => socket.end("GET /health/primary HTTP/1.0\r\n\r\n"));
      let text = "";
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
      });
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    assert.match(raw, /^HTTP\/1\.[01] 200 /);
    assert.match(raw, /"status":"ok"/);
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

/** Raft status fields a test sets; the rest are a converged 3-voter secondary's. */
interface StatusChange {
  state?: string;
  role?: string;
  leader?: string | null;
  commit?: number;
  applied?: number;
  voters?: string[];
  learners?: string[];
}

function appOver(change: StatusChange): ReturnType<typeof createAdminApp> {
  const status = {
    node: "n2@127.0.0.1",
    raftId: "n2",
    state: change.state ?? "SECONDARY",
    role: change.role ?? "follower",
    leader: change.leader === undefined ? "n1" : change.leader,
    commit: change.commit ?? 40,
    applied: change.applied ?? 40,
    membership: { voters: change.voters ?? ["n1", "n2", "n3"], learners: change.learners ?? [] },
  };
  // The health routes read only `node`; the token check (for /v1/*) only `apiToken`; every
  // request is counted in `httpMetrics`.
  const context = {
    node: {
      status: () => status,
      memberName: (raftId: string | null) => (raftId === null ? null : `${raftId}@127.0.0.1`),
      details: async () => ({}),
    },
    apiToken: { check: () => false },
    httpMetrics: new HttpMetrics(),
  } as unknown as AdminContext;
  return createAdminApp(context, [registerHealthRoutes]);
}

async function answerOf(
  change: StatusChange,
  path: string,
): Promise<{ status: number; body: HealthBody & Record<string, unknown> }> {
  const response = await appOver(change).request(path);
  return { status: response.status, body: (await response.json()) as HealthBody & Record<string, unknown> };
}

describe("health endpoints in states a test sets", () => {
  it("every answer carries the same fields, including the lag and the primary's name", async () => {
    const { status, body } = await answerOf({ commit: 50, applied: 45 }, "/health/standby");
    assert.equal(status, 200);
    assert.deepEqual(body, {
      status: "ok",
      node: "n2@127.0.0.1",
      state: "SECONDARY",
      role: "follower",
      leader: "n1@127.0.0.1",
      commit: 50,
      applied: 45,
      lag: 5,
      reason: "a secondary that knows the primary",
    });
  });

  it("a secondary behind by more than lag is 503 for standby and ready, and 200 within it", async () => {
    const behind = { commit: 50, applied: 45 };
    assert.equal((await answerOf(behind, "/health/standby?lag=5")).status, 200);
    assert.equal((await answerOf(behind, "/health/ready?lag=5")).status, 200);
    for (const path of ["/health/standby?lag=4", "/health/ready?lag=4"]) {
      const { status, body } = await answerOf(behind, path);
      assert.equal(status, 503, path);
      assert.equal(body.status, "unavailable");
      assert.equal(body.reason, "this node is 5 entries behind what it knows is committed (more than lag=4)");
    }
  });

  it("a learner that caught up is ready and a standby; a node outside the membership is neither", async () => {
    const learner = { state: "CATCHING_UP", voters: ["n1", "n3"], learners: ["n2"] };
    assert.equal((await answerOf(learner, "/health/ready")).status, 200);
    assert.equal((await answerOf(learner, "/health/standby?lag=0")).status, 200);
    const outsider = { state: "STANDBY", leader: null, voters: ["n1", "n3"] };
    for (const path of ["/health/ready", "/health/standby", "/health/primary"]) {
      assert.equal((await answerOf(outsider, path)).status, 503, path);
    }
    assert.match((await answerOf(outsider, "/health/ready")).body.reason, /not a member of a cluster/);
    assert.equal((await answerOf(outsider, "/health/live")).status, 200);
  });

  it("leaving, disk full and elections take a secondary out; a candidate is never a standby", async () => {
    const cases: [StatusChange, RegExp][] = [
      [{ state: "LEAVING" }, /leaving the cluster/],
      [{ state: "RECOVERY" }, /disk is full/],
      [{ state: "CANDIDATE", role: "pre-candidate" }, /election is running/],
      [{ state: "CANDIDATE", role: "candidate", leader: null }, /election is running/],
      [{ state: "DOWN" }, /stopping/],
    ];
    for (const [change, reason] of cases) {
      for (const path of ["/health/ready", "/health/standby"]) {
        const { status, body } = await answerOf(change, path);
        assert.equal(status, 503, `${path} in ${JSON.stringify(change)}`);
        assert.match(body.reason, reason);
      }
    }
  });

  it("primary is 200 on a running leader, saying when it refuses writes, and 503 once it stops", async () => {
    const leader = { state: "PRIMARY", role: "leader", leader: "n2" };
    assert.equal((await answerOf(leader, "/health/primary")).body.reason, "this node is the primary");
    const full = await answerOf({ ...leader, state: "RECOVERY" }, "/health/primary");
    assert.equal(full.status, 200, "the only node that can take writes stays the load balancer's target");
    assert.match(full.body.reason, /refuses writes for now/);
    const stopping = await answerOf({ ...leader, state: "DOWN" }, "/health/primary");
    assert.equal(stopping.status, 503);
    const candidate = await answerOf(
      { state: "CANDIDATE", role: "candidate", leader: null },
      "/health/primary",
    );
    assert.equal(candidate.status, 503);
    assert.equal(candidate.body.reason, "this node is CANDIDATE, not the primary (no primary is known)");
  });

  it("HEAD answers the status without a body; only GET and HEAD are served", async () => {
    const head = await appOver({}).request("/health/primary", { method: "HEAD" });
    assert.equal(head.status, 503);
    assert.equal(await head.text(), "");
    assert.equal((await appOver({}).request("/health/live", { method: "POST" })).status, 404);
  });
});
