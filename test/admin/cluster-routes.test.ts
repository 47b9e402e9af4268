/**
 * The HTTP API on a real 3-node cluster in one process: a failed transaction rolled back on
 * every member, writes and linearizable/strong reads on a follower forwarded to the primary over
 * the cluster transport (weak reads still answered 421 naming the primary), stale reads with
 * `none` on a cut-off member (and refused with maxStalenessMs), identical database hashes after
 * a random workload, 504 "outcome unknown" without a quorum and 503 once no primary is known.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Prng } from "../../src/lib/prng.ts";
import { authorizedFetch } from "../e2e/api-token.ts";
import { waitFor } from "../e2e/node-processes.ts";
import { InProcessCluster, postJson, queryRows, type TestNode } from "./node-fixture.ts";

describe("the HTTP API on a 3-node cluster", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  let leader: TestNode;
  const execute = (node: TestNode, statements: unknown) =>
    postJson(`${node.url}/v1/sql/execute`, { statements });

  before(async () => {
    // 50 ms ticks (elections after 0.4–0.6 s): three members share this process's event loop, and
    // with 10 ms ticks a stall of ~100 ms on a loaded CI machine (the db-hash test runs three
    // VACUUM INTO on this loop) moved leadership between tests.
    cluster = await InProcessCluster.start(3, { tickIntervalMs: 50 });
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

  it("a follower forwards every kind of write to the primary and answers with its result", async () => {
    const [follower] = cluster.followers(leader);
    assert.ok(follower);
    const write = await execute(follower, [{ sql: "INSERT INTO t (id, v) VALUES (50, 9)" }]);
    assert.equal(write.status, 200, JSON.stringify(write.body));
    assert.deepEqual(write.body.results, [{ rowsChanged: 1, lastInsertRowid: 50 }]);
    const failed = await execute(follower, [{ sql: "INSERT INTO t (id, v) VALUES (51, NULL)" }]);
    assert.equal(failed.status, 422, "a statement failure comes back from the primary, rolled back");
    assert.equal(failed.body.outcome, "rolled-back");
    const put = await authorizedFetch(`${follower.url}/v1/kv/fwd`, { method: "PUT", body: "one" });
    assert.equal(put.status, 200);
    const putBody = (await put.json()) as { revision: number };
    const cas = await authorizedFetch(`${follower.url}/v1/kv/fwd?prevRevision=999999`, {
      method: "PUT",
      body: "two",
    });
    assert.equal(cas.status, 412);
    assert.equal(((await cas.json()) as { modRevision: number }).modRevision, putBody.revision);
    const txn = await postJson(`${follower.url}/v1/kv/txn`, {
      compare: [{ key: "fwd", target: "value", operator: "=", value: Buffer.from("one").toString("base64") }],
      success: [{ op: "put", key: "fwd", value: Buffer.from("three").toString("base64") }],
    });
    assert.equal(txn.status, 200);
    assert.equal(txn.body.succeeded, true);
    const lease = await postJson(`${follower.url}/v1/leases`, { ttlMs: 60_000 });
    assert.equal(lease.status, 200, JSON.stringify(lease.body));
    const revoked = await authorizedFetch(`${follower.url}/v1/leases/${String(lease.body.leaseId)}`, {
      method: "DELETE",
    });
    assert.equal(revoked.status, 200);
    const removed = await authorizedFetch(`${follower.url}/v1/kv/fwd`, { method: "DELETE" });
    assert.deepEqual(((await removed.json()) as { deleted: number }).deleted, 1);
    // Applied once, on the primary too.
    const rows = await queryRows(leader.url, "SELECT count(*) AS n FROM t WHERE id IN (50, 51)");
    assert.deepEqual(rows.rows, [{ n: 1 }]);
    assert.ok(follower.node.runtime.stats().forwarding.forwarded >= 8);
  });

  it("a follower's linearizable and strong reads see a write acknowledged just before by the primary; weak stays 421", async () => {
    const [follower] = cluster.followers(leader);
    assert.ok(follower);
    for (let i = 0; i < 5; i++) {
      const put = await authorizedFetch(`${leader.url}/v1/kv/fresh`, { method: "PUT", body: `v${i}` });
      assert.equal(put.status, 200);
      const read = await authorizedFetch(`${follower.url}/v1/kv/fresh`);
      assert.equal(read.status, 200);
      assert.equal(await read.text(), `v${i}`, "linearizable read on a follower");
      const strong = await authorizedFetch(`${follower.url}/v1/kv/fresh?consistency=strong`);
      assert.equal(await strong.text(), `v${i}`, "strong read on a follower");
    }
    const sql = await queryRows(follower.url, "SELECT 1 AS one", "linearizable");
    assert.deepEqual(sql.rows, [{ one: 1 }]);
    const weak = await queryRows(follower.url, "SELECT 1", "weak");
    assert.equal(weak.status, 421);
    assert.equal(weak.body.leader, leader.node.raftId);
    assert.equal(weak.body.leaderNode, leader.node.nodeName);
    // The member list carries each member's HTTP address once it announced itself.
    await waitFor("the primary's row in the member list", 5000, async () =>
      follower.node.database.cluster.members().some((row) => row.raftId === leader.node.raftId),
    );
    const again = await queryRows(follower.url, "SELECT 1", "weak");
    assert.equal(again.body.leaderUrl, leader.url, "a 421 names the primary's HTTP address");
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
      else await authorizedFetch(`${leader.url}/v1/kv/key-${id}`, { method: "PUT", body: `value-${i}` });
    }
    await cluster.converged();
    const hashes = await Promise.all(
      cluster.nodes.map(
        async (member) =>
          (await (await authorizedFetch(`${member.url}/v1/debug/db-hash`)).json()) as {
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
    leader = await cluster.leader();
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
    await waitFor("the primary to step down without a quorum", 5000, async () =>
      leader.node.runtime.status().leader === null ? true : null,
    );
    const refused = await execute(leader, [{ sql: "INSERT INTO t (v) VALUES (1)" }]);
    assert.equal(refused.status, 503, "no primary known: nothing to forward to");
    assert.equal(refused.body.code, "CONCLAVE_NOT_PRIMARY");
    assert.equal(refused.body.outcome, "not-applied");
  });
});
