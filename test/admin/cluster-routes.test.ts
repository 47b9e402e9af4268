/**
 * The HTTP API on a real 3-node cluster in one process: a failed transaction rolled back on
 * every member, writes and linearizable reads on a follower answered 421 naming the primary,
 * stale reads with `none` on a cut-off member (and refused with maxStalenessMs), identical
 * database hashes after a random workload, and 504 "outcome unknown" without a quorum.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Prng } from "../../src/lib/prng.ts";
import { waitFor } from "../e2e/node-processes.ts";
import { InProcessCluster, postJson, queryRows, type TestNode } from "./node-fixture.ts";

describe("the HTTP API on a 3-node cluster", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  let leader: TestNode;
  const execute = (node: TestNode, statements: unknown) =>
    postJson(`${node.url}/v1/sql/execute`, { statements });

  before(async () => {
    cluster = await InProcessCluster.start(3);
    leader = await cluster.leader();
    const created = await execute(leader, [
      { sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)" },
    ]);
    assert.equal(created.status, 200, JSON.stringify(created.body));
  });
  after(async () => cluster.stop());

  it("a failed multi-statement transaction is rolled back on all three members", async () => {
    assert.equal((await execute(leader, [{ sql: "INSERT INTO t (id, v) VALUES (1, 1)" }])).status, 200);
    const failed = await execute(leader, [
      { sql: "UPDATE t SET v = 2 WHERE id = 1" },
      { sql: "INSERT INTO t (id, v) VALUES (2, 2)" },
      { sql: "INSERT INTO t (id, v) VALUES (3, NULL)" }, // NOT NULL
    ]);
    assert.equal(failed.status, 422);
    assert.equal(failed.body.statementIndex, 2);
    await cluster.converged();
    for (const member of cluster.nodes) {
      const { rows } = await queryRows(member.url, "SELECT id, v FROM t ORDER BY id", "none");
      assert.deepEqual(rows, [{ id: 1, v: 1 }], `${member.name} holds only the committed row`);
    }
  });

  it("a follower answers writes and linearizable reads with 421 naming the primary", async () => {
    const [follower] = cluster.followers(leader);
    assert.ok(follower);
    const write = await execute(follower, [{ sql: "INSERT INTO t (v) VALUES (9)" }]);
    assert.equal(write.status, 421);
    assert.equal(write.body.leader, leader.node.raftId);
    assert.equal(write.body.leaderNode, leader.node.nodeName);
    assert.equal(write.body.outcome, "not-applied");
    const read = await queryRows(follower.url, "SELECT 1", "linearizable");
    assert.equal(read.status, 421);
    const weak = await queryRows(follower.url, "SELECT 1", "weak");
    assert.equal(weak.status, 421);
    const kvRead = await fetch(`${follower.url}/v1/kv/anything`);
    assert.equal(kvRead.status, 421);
  });

  it("byte-identical databases on every member after a random workload (GET /v1/debug/db-hash)", async () => {
    const prng = new Prng(7);
    for (let i = 0; i < 60; i++) {
      const choice = prng.nextInt(3);
      const id = prng.nextInt(20) + 10;
      if (choice === 0)
        await execute(leader, [{ sql: "INSERT OR REPLACE INTO t (id, v) VALUES (?, ?)", params: [id, i] }]);
      else if (choice === 1)
        await execute(leader, [{ sql: "UPDATE t SET v = v + random() % 5 WHERE id = ?", params: [id] }]);
      else await fetch(`${leader.url}/v1/kv/key-${id}`, { method: "PUT", body: `value-${i}` });
    }
    await cluster.converged();
    const hashes = await Promise.all(
      cluster.nodes.map(
        async (member) =>
          (await (await fetch(`${member.url}/v1/debug/db-hash`)).json()) as {
            sha256: string;
            appliedIndex: number;
          },
      ),
    );
    assert.equal(new Set(hashes.map((hash) => hash.appliedIndex)).size, 1, JSON.stringify(hashes));
    assert.equal(new Set(hashes.map((hash) => hash.sha256)).size, 1, JSON.stringify(hashes));
    assert.match(hashes[0]?.sha256 ?? "", /^[0-9a-f]{64}$/);
  });

  it("a cut-off member serves stale reads with none, refuses them past maxStalenessMs", async () => {
    const [cutOff] = cluster.followers(leader);
    assert.ok(cutOff);
    await cluster.converged();
    await cutOff.node.runtime.stop(); // its HTTP server and database stay: a member that hears nothing
    const write = await execute(leader, [{ sql: "INSERT INTO t (id, v) VALUES (100, 100)" }]);
    assert.equal(write.status, 200, "two of three members are a quorum");
    const stale = await queryRows(cutOff.url, "SELECT count(*) AS n FROM t WHERE id = 100", "none");
    assert.equal(stale.status, 200);
    assert.deepEqual(stale.rows, [{ n: 0 }], "the cut-off member does not have the new row");
    const fresh = await queryRows(leader.url, "SELECT count(*) AS n FROM t WHERE id = 100", "linearizable");
    assert.deepEqual(fresh.rows, [{ n: 1 }]);
    await waitFor("the cut-off member to age past 200 ms", 5000, async () => {
      const { status } = await postJson(`${cutOff.url}/v1/sql/query`, {
        sql: "SELECT 1",
        consistency: "none",
        maxStalenessMs: 200,
      });
      return status === 503;
    });
    const refused = await postJson(`${cutOff.url}/v1/sql/query`, {
      sql: "SELECT 1",
      consistency: "none",
      maxStalenessMs: 200,
    });
    assert.equal(refused.body.code, "CONCLAVE_STALE");
    const onLeader = await postJson(`${leader.url}/v1/sql/query`, {
      sql: "SELECT 1 AS one",
      consistency: "none",
      maxStalenessMs: 200,
    });
    assert.equal(onLeader.status, 200, "the primary is in contact with itself");
  });

  it("without a quorum a write times out with 504 and says the outcome is unknown", async () => {
    for (const follower of cluster.followers(leader))
      if (follower.node.runtime.running) await follower.node.runtime.stop();
    const write = await execute(leader, [{ sql: "INSERT INTO t (v) VALUES (1)" }]);
    assert.equal(write.status, 504, JSON.stringify(write.body));
    assert.equal(write.body.code, "CONCLAVE_TIMEOUT");
    assert.equal(write.body.outcome, "unknown");
    assert.match(String(write.body.error), /outcome is unknown/);
  });
});
