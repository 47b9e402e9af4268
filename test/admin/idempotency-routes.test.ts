/**
 * `Idempotency-Key` on the write routes of a 3-member cluster: KV writes and lease grants are
 * replayed (`Idempotency-Replayed: true`, the first answer, nothing applied twice), also when
 * the retry reaches another member than the first attempt; a key reused for another request is
 * a 422 that applied nothing; a malformed key is a 400 on every write route; a result too large
 * to keep answers 409 saying the write was applied.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { idempotencyResultBytesMax } from "../../src/adapters/sqlite/idempotency.ts";
import { authorizedFetch } from "../e2e/api-token.ts";
import { InProcessCluster, queryRows, type TestNode } from "./node-fixture.ts";

interface Answer {
  readonly status: number;
  readonly replayed: string | null;
  readonly body: Record<string, unknown>;
}

async function send(
  url: string,
  method: string,
  key: string | null,
  body?: string | Uint8Array,
  contentType = "application/json",
): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": contentType };
  if (key !== null) headers["idempotency-key"] = key;
  const response = await authorizedFetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: response.status,
    replayed: response.headers.get("idempotency-replayed"),
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** An answer without the entry's index and term: a replay carries its own entry's (a later one). */
function withoutEntry(body: Record<string, unknown>): Record<string, unknown> {
  const { index: _index, term: _term, ...rest } = body;
  return rest;
}

describe("Idempotency-Key on the write routes", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  let primary: TestNode;
  let secondary: TestNode;

  before(async () => {
    // 50 ms ticks (elections after 0.4–0.6 s), as in cluster-routes.test.ts: the tests keep the
    // primary found here, and with 10 ms ticks a ~100 ms stall of this shared event loop on a
    // loaded machine moved leadership between them (CI saw 503s from the old primary).
    cluster = await InProcessCluster.start(3, { tickIntervalMs: 50 });
    primary = await cluster.leader();
    secondary = cluster.followers(primary)[0] as TestNode;
  });
  after(async () => cluster.stop());

  it("replays KV put, delete and txn answers; a retry at another member gets the same answer", async () => {
    const put = `${primary.url}/v1/kv/idem%2Fa`;
    const first = await send(put, "PUT", "kv-put-1", "one", "application/octet-stream");
    assert.equal(first.status, 200);
    assert.equal(first.replayed, null);
    // Retried through a secondary (forwarded to the primary): replayed, not applied again.
    const retry = await send(
      `${secondary.url}/v1/kv/idem%2Fa`,
      "PUT",
      "kv-put-1",
      "one",
      "application/octet-stream",
    );
    assert.equal(retry.status, 200);
    assert.equal(retry.replayed, "true");
    assert.equal(retry.body.revision, first.body.revision);
    const stored = await send(`${primary.url}/v1/kv/idem%2Fa?format=json`, "GET", null);
    assert.equal(stored.body.version, 1, "written once");

    const txnBody = JSON.stringify({
      compare: [{ key: "idem/a", target: "version", operator: "=", value: 1 }],
      success: [{ op: "put", key: "idem/a", value: Buffer.from("two").toString("base64") }],
      failure: [],
    });
    const txn = await send(`${primary.url}/v1/kv/txn`, "POST", "kv-txn-1", txnBody);
    const txnAgain = await send(`${primary.url}/v1/kv/txn`, "POST", "kv-txn-1", txnBody);
    assert.equal(txn.body.succeeded, true);
    assert.equal(txnAgain.replayed, "true");
    assert.deepEqual(
      withoutEntry(txnAgain.body),
      withoutEntry(txn.body),
      "the compare saw version 1 again: the first answer, not a re-run",
    );

    const deleted = await send(put, "DELETE", "kv-del-1");
    const deletedAgain = await send(put, "DELETE", "kv-del-1");
    assert.equal(deleted.body.deleted, 1);
    assert.deepEqual(withoutEntry(deletedAgain.body), withoutEntry(deleted.body));
    assert.equal(deletedAgain.replayed, "true");
  });

  it("a retried lease grant gets the lease already granted, not a second one", async () => {
    const grant = (key: string | null) =>
      send(`${primary.url}/v1/leases`, "POST", key, JSON.stringify({ ttlMs: 60_000 }));
    const first = await grant("grant-1");
    const retry = await grant("grant-1");
    assert.equal(first.status, 200);
    assert.equal(retry.replayed, "true");
    assert.deepEqual(withoutEntry(retry.body), withoutEntry(first.body));
    const next = await grant(null);
    assert.equal(next.body.leaseId, (first.body.leaseId as number) + 1, "the retry granted nothing");
    const revoke = await send(`${primary.url}/v1/leases/${next.body.leaseId}`, "DELETE", "revoke-1");
    const revokeAgain = await send(`${primary.url}/v1/leases/${next.body.leaseId}`, "DELETE", "revoke-1");
    assert.equal(revoke.status, 200);
    assert.equal(revokeAgain.status, 200, "not a 404 for a lease the first attempt revoked");
    assert.equal(revokeAgain.replayed, "true");
  });

  it("refuses a key reused for another request (422, nothing applied) and a malformed key on every write route", async () => {
    const first = await send(`${primary.url}/v1/kv/reuse`, "PUT", "reuse-1", "a", "text/plain");
    assert.equal(first.status, 200);
    const reused = await send(`${secondary.url}/v1/kv/reuse`, "PUT", "reuse-1", "b", "text/plain");
    assert.equal(reused.status, 422);
    assert.equal(reused.body.code, "CONCLAVE_IDEMPOTENCY_KEY_REUSED");
    assert.equal(reused.body.outcome, "not-applied");
    const value = await send(`${primary.url}/v1/kv/reuse?format=json`, "GET", null);
    assert.equal(value.body.version, 1);

    const badKey = "bad key";
    const attempts: [string, string, string | undefined][] = [
      [`${primary.url}/v1/kv/x`, "PUT", "v"],
      [`${primary.url}/v1/kv/x`, "DELETE", undefined],
      [`${primary.url}/v1/kv/txn`, "POST", JSON.stringify({ compare: [], success: [], failure: [] })],
      [`${primary.url}/v1/leases`, "POST", JSON.stringify({ ttlMs: 1000 })],
      [`${primary.url}/v1/sql/execute`, "POST", JSON.stringify({ statements: [{ sql: "SELECT 1" }] })],
    ];
    for (const [url, method, body] of attempts) {
      const answer = await send(url, method, badKey, body);
      assert.equal(answer.status, 400, `${method} ${url}`);
      assert.match(answer.body.error as string, /Idempotency-Key header must be 1 to 128 visible ASCII/);
    }
    assert.equal((await send(`${primary.url}/v1/kv/x?format=json`, "GET", null)).status, 404);
  });

  it("a retry whose first result was too large to keep is a 409 that says the write was applied", async () => {
    const big = new Uint8Array(idempotencyResultBytesMax).fill(65);
    assert.equal((await send(`${primary.url}/v1/kv/big`, "PUT", null, big, "text/plain")).status, 200);
    const txnBody = JSON.stringify({
      compare: [],
      success: [
        { op: "put", key: "big-read", value: "" },
        { op: "get", key: "big" },
      ],
      failure: [],
    });
    const first = await send(`${primary.url}/v1/kv/txn`, "POST", "big-1", txnBody);
    assert.equal(first.status, 200);
    const retry = await send(`${primary.url}/v1/kv/txn`, "POST", "big-1", txnBody);
    assert.equal(retry.status, 409);
    assert.equal(retry.body.code, "CONCLAVE_IDEMPOTENCY_RESULT_NOT_KEPT");
    assert.equal(retry.body.outcome, "applied");
    assert.equal(retry.replayed, "true");
    const written = await send(`${primary.url}/v1/kv/big-read?format=json`, "GET", null);
    assert.equal(written.body.version, 1, "applied once");
  });

  it("keyed SQL retried at a secondary answers the first result; the row exists once", async () => {
    const execute = (url: string, sql: string) =>
      send(`${url}/v1/sql/execute`, "POST", "sql-1", JSON.stringify({ statements: [{ sql }] }));
    await send(
      `${primary.url}/v1/sql/execute`,
      "POST",
      null,
      JSON.stringify({ statements: [{ sql: "CREATE TABLE orders (id INTEGER PRIMARY KEY, at TEXT)" }] }),
    );
    // datetime('now') is rewritten to the primary's clock: the retry's command differs, its request does not.
    const sql = "INSERT INTO orders (at) VALUES (datetime('now'))";
    const first = await execute(primary.url, sql);
    const retry = await execute(secondary.url, sql);
    assert.equal(first.status, 200);
    assert.equal(retry.replayed, "true");
    assert.deepEqual(retry.body.results, first.body.results);
    assert.deepEqual((await queryRows(primary.url, "SELECT count(*) AS n FROM orders")).rows, [{ n: 1 }]);
  });
});
