/**
 * Safe retries end to end: the HTTP API's `Idempotency-Key` (validated, replayed answers marked
 * `Idempotency-Replayed: true`, a key reused for another request refused), and the client, whose
 * write loses its answer on the way back (a proxy forwards the request, then drops the
 * connection): the client retries with the same key, gets the original result, and the row
 * exists once — also when the primary dies with the answer and the retry reaches the new one.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { ConclaveClient } from "../../src/client/index.ts";
import { InProcessCluster, postJson, queryRows, type TestNode } from "../admin/node-fixture.ts";
import { authorizedFetch, testApiToken } from "../e2e/api-token.ts";

/**
 * A TCP proxy that drops the answer to the first request whose head contains `marker` (none
 * when `marker` is null), then calls `onDrop`.
 */
async function lossyProxy(
  target: URL,
  marker: string | null,
  onDrop: () => void = () => {},
): Promise<{ url: string; server: Server; dropped: () => number }> {
  let dropped = 0;
  let armed = true;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let dropThis = false;
    client.on("data", (chunk) => {
      if (armed && marker !== null && chunk.toString("latin1").includes(marker)) {
        armed = false;
        dropThis = true;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (dropThis) {
        dropped++;
        client.destroy(); // the request was applied; its answer never arrives
        upstream.destroy();
        if (dropped === 1) onDrop();
        return;
      }
      client.write(chunk);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  const close = server.close.bind(server);
  server.close = ((callback?: (error?: Error) => void) => {
    for (const socket of sockets) socket.destroy();
    return close(callback);
  }) as typeof server.close;
  return { url: `http://127.0.0.1:${address.port}`, server, dropped: () => dropped };
}

describe("idempotency keys over HTTP and in the client", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  let url: string;
  const execute = (key: string | null, sql: string) =>
    authorizedFetch(`${url}/v1/sql/execute`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key === null ? {} : { "idempotency-key": key }) },
      body: JSON.stringify({ statements: [{ sql }] }),
    });

  before(async () => {
    cluster = await InProcessCluster.start(1);
    url = cluster.node("n1").url;
    assert.equal((await execute(null, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")).status, 200);
  });
  after(async () => cluster.stop());

  it("replays a keyed write's answer instead of applying it again, and says so", async () => {
    const first = await execute("order-1", "INSERT INTO t (v) VALUES ('a')");
    const second = await execute("order-1", "INSERT INTO t (v) VALUES ('a')");
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.equal(first.headers.get("idempotency-replayed"), null);
    assert.equal(second.headers.get("idempotency-replayed"), "true");
    const firstBody = (await first.json()) as { results: unknown };
    assert.deepEqual(((await second.json()) as { results: unknown }).results, firstBody.results);
    assert.deepEqual((await queryRows(url, "SELECT count(*) AS n FROM t WHERE v = 'a'")).rows, [{ n: 1 }]);
  });

  it("refuses a key reused for another request, and a malformed key", async () => {
    const reused = await execute("order-1", "INSERT INTO t (v) VALUES ('b')");
    assert.equal(reused.status, 422);
    assert.equal(((await reused.json()) as { code: string }).code, "CONCLAVE_IDEMPOTENCY_KEY_REUSED");
    for (const bad of ["", "x".repeat(129), "has space"]) {
      const response = await execute(bad, "INSERT INTO t (v) VALUES ('c')");
      assert.equal(response.status, 400, JSON.stringify(bad));
      assert.match(
        ((await response.json()) as { error: string }).error,
        /Idempotency-Key header must be 1 to 128 visible ASCII/,
      );
    }
    assert.deepEqual((await queryRows(url, "SELECT count(*) AS n FROM t WHERE v IN ('b', 'c')")).rows, [
      { n: 0 },
    ]);
  });

  it("the client retries a write whose answer was lost, with the same key: applied once", async () => {
    const proxy = await lossyProxy(new URL(url), "/v1/sql/execute");
    try {
      const client = new ConclaveClient({ endpoints: [proxy.url], timeoutMs: 5000, token: testApiToken });
      const [result] = await client.sql.execute([{ sql: "INSERT INTO t (v) VALUES ('lost-answer')" }]);
      assert.equal(proxy.dropped(), 1, "the first answer was dropped");
      assert.equal(result?.rowsChanged, 1);
      const rows = (await queryRows(url, "SELECT id FROM t WHERE v = 'lost-answer'")).rows;
      assert.equal(rows.length, 1, "the row exists once");
      assert.equal(result?.lastInsertRowid, rows[0]?.id, "the retry got the original answer");
      const put = await client.kv.put("k", "v", { idempotencyKey: "put-k-1" });
      const putAgain = await client.kv.put("k", "v", { idempotencyKey: "put-k-1" });
      assert.equal(putAgain.revision, put.revision, "a repeated key gets the original revision");
    } finally {
      await new Promise((resolve) => proxy.server.close(resolve));
    }
  });
});

describe("a keyed write whose primary died before answering", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster | undefined;
  after(async () => cluster?.stop());

  it("is retried at the new primary with the same key: the original answer, applied once", async () => {
    // The "lan" profile's real tick (50 ms: a 400–600 ms election), so the client's retries must
    // outlast a production failover. (With the "wan" tick, 250 ms, it passes too, in ~5 s.)
    cluster = await InProcessCluster.start(3, { tickIntervalMs: 50 });
    const leader = await cluster.leader();
    const [first, second] = cluster.followers(leader) as [TestNode, TestNode];
    assert.equal(
      (
        await postJson(`${leader.url}/v1/sql/execute`, {
          statements: [{ sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)" }],
        })
      ).status,
      200,
    );
    // The primary applies the write, its answer is lost, and the primary is gone.
    const proxies = [
      await lossyProxy(new URL(leader.url), "/v1/sql/execute", () => void leader.node.stop()),
      await lossyProxy(new URL(first.url), null),
      await lossyProxy(new URL(second.url), null),
    ];
    try {
      const client = new ConclaveClient({
        endpoints: proxies.map((proxy) => proxy.url),
        timeoutMs: 5000,
        token: testApiToken,
      });
      const [result] = await client.sql.execute([{ sql: "INSERT INTO t (v) VALUES ('failover')" }]);
      assert.equal(proxies[0]?.dropped(), 1, "the first answer was lost");
      const newLeader = await cluster.leader();
      assert.notEqual(newLeader, leader, "answered by a new primary");
      const rows = (await queryRows(newLeader.url, "SELECT id FROM t WHERE v = 'failover'")).rows;
      assert.equal(rows.length, 1, "the row exists once");
      assert.equal(result?.lastInsertRowid, rows[0]?.id, "the retry got the original answer");
    } finally {
      for (const proxy of proxies) await new Promise((resolve) => proxy.server.close(resolve));
    }
  });
});
