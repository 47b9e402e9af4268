/**
 * The TypeScript client against a real 3-node cluster in this process: it finds the primary from
 * any endpoint (following 421), skips a dead endpoint, runs SQL and KV operations, watches, and
 * never retries a write whose outcome is unknown.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConclaveClient } from "../../src/client/index.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { InProcessCluster } from "../admin/node-fixture.ts";
import { testApiToken } from "../e2e/api-token.ts";
import { freePort } from "../e2e/node-processes.ts";

describe("ConclaveClient", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  let client: ConclaveClient;

  before(async () => {
    cluster = await InProcessCluster.start(3);
    const leader = await cluster.leader();
    const dead = `http://127.0.0.1:${await freePort()}`;
    // A dead endpoint and the followers first: the client must find the primary itself.
    client = new ConclaveClient({
      endpoints: [dead, ...cluster.followers(leader).map((f) => f.url), leader.url],
      timeoutMs: 5000,
      token: testApiToken,
    });
  });
  after(async () => cluster.stop());

  it("executes SQL on the primary from any endpoint and queries at each consistency", async () => {
    await client.sql.execute([
      { sql: "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, photo BLOB)" },
    ]);
    const [inserted] = await client.sql.execute([
      { sql: "INSERT INTO people (name, photo) VALUES (?, ?)", params: ["ada", new Uint8Array([1, 2, 3])] },
    ]);
    assert.deepEqual(inserted, { rowsChanged: 1, lastInsertRowid: 1 });
    for (const consistency of ["linearizable", "strong", "weak"] as const) {
      const { rows } = await client.sql.query("SELECT name, photo FROM people", [], { consistency });
      assert.deepEqual(rows, [{ name: "ada", photo: new Uint8Array([1, 2, 3]) }], consistency);
    }
    const big = await client.sql.query("SELECT ? AS v", [2n ** 62n]);
    assert.equal(big.rows[0]?.v, 2n ** 62n);
  });

  it("throws the server's code for a failed statement, with its index", async () => {
    await assert.rejects(
      client.sql.execute([{ sql: "SELECT 1" }, { sql: "INSERT INTO missing VALUES (1)" }]),
      (error: unknown) => {
        assert.ok(isConclaveError(error));
        assert.equal(error.code, "SQLITE_ERROR");
        assert.equal(error.details.statementIndex, 1);
        return true;
      },
    );
  });

  it("puts, gets, compares-and-sets, ranges, transacts and deletes keys", async () => {
    const { revision } = await client.kv.put("cfg/a", "1");
    assert.equal((await client.kv.get("cfg/a"))?.text(), "1");
    await assert.rejects(client.kv.put("cfg/a", "2", { prevRevision: revision - 1 }), /mod revision/);
    await client.kv.put("cfg/a", "2", { prevRevision: revision });
    await client.kv.put("cfg/b", new Uint8Array([0xff]));
    const range = await client.kv.range("cfg/");
    assert.deepEqual(
      range.kvs.map((kv) => kv.key),
      ["cfg/a", "cfg/b"],
    );
    const txn = await client.kv.txn({
      compare: [{ key: "cfg/a", target: "value", operator: "=", value: "2" }],
      success: [{ op: "put", key: "cfg/c", value: "3" }],
    });
    assert.equal(txn.succeeded, true);
    assert.equal((await client.kv.get("cfg/c", { consistency: "strong" }))?.text(), "3");
    assert.equal((await client.kv.delete("cfg/c")).deleted, 1);
    assert.equal(await client.kv.get("cfg/c"), null);
  });

  it("watches changes from a revision and stops on abort", async () => {
    const { revision } = await client.kv.put("watch/x", "a");
    const controller = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const change of client.kv.watch("watch/", {
        fromRevision: revision,
        signal: controller.signal,
      })) {
        seen.push(`${change.type}:${change.key}`);
        if (seen.length === 3) break;
      }
    })();
    await client.kv.put("watch/y", "b");
    await client.kv.delete("watch/x");
    await watching;
    controller.abort();
    assert.deepEqual(seen, ["put:watch/x", "put:watch/y", "delete:watch/x"]);
  });

  it("grants, keeps alive and revokes leases", async () => {
    const { leaseId } = await client.leases.grant(60_000);
    await client.kv.put("leased", "x", { lease: leaseId });
    assert.ok((await client.leases.keepAlive(leaseId)).expiresAtMs > Date.now());
    assert.equal((await client.leases.revoke(leaseId)).deletedKeys, 1);
    assert.equal(await client.kv.get("leased"), null);
  });

  it("retries a write whose outcome is unknown only with its idempotency key, bounded in time", async () => {
    const leader = await cluster.leader();
    for (const follower of cluster.followers(leader)) await follower.node.runtime.stop();
    const lastBefore = leader.node.runtime.status().lastIndex;
    const impatient = new ConclaveClient({ endpoints: [leader.url], timeoutMs: 3500, token: testApiToken });
    const started = performance.now();
    await assert.rejects(
      impatient.kv.put("unknown", "x", { idempotencyKey: "unknown-1" }),
      (error: unknown) => {
        assert.ok(isConclaveError(error), String(error));
        assert.match(error.message, /outcome is unknown|may or may not be applied/);
        return true;
      },
    );
    const elapsedMs = performance.now() - started;
    assert.ok(elapsedMs < 2 * 3500 + 1500, `gave up after ${Math.round(elapsedMs)} ms (twice the timeout)`);
    const proposals = leader.node.runtime.status().lastIndex - lastBefore;
    assert.ok(
      proposals >= 1,
      `proposed (${proposals} entries, all with key unknown-1: at most one can apply)`,
    );
  });
});
