/**
 * The KV routes of one real node: put/get/delete with revisions, compare-and-set, ranges,
 * transactions, leases that expire through the log, and watches streamed as NDJSON.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { authorizedFetch } from "../e2e/api-token.ts";
import { waitFor } from "../e2e/node-processes.ts";
import { InProcessCluster, postJson } from "./node-fixture.ts";

const b64 = (text: string): string => Buffer.from(text).toString("base64");

describe("KV over HTTP on one node", { timeout: 30_000 }, () => {
  let cluster: InProcessCluster;
  let url: string;
  const put = (key: string, value: string, query = "") =>
    authorizedFetch(`${url}/v1/kv/${encodeURIComponent(key)}${query}`, { method: "PUT", body: value });

  before(async () => {
    cluster = await InProcessCluster.start(1, { kvHistoryRevisionsMax: 20 });
    url = cluster.node("n1").url;
  });
  after(async () => cluster.stop());

  it("puts and gets raw values with revision headers; keys may hold slashes", async () => {
    const first = (await (await put("app/config", "v1")).json()) as { revision: number; created: boolean };
    assert.equal(first.created, true);
    await put("app/config", "v2");
    const got = await authorizedFetch(`${url}/v1/kv/app%2Fconfig`);
    assert.equal(got.status, 200);
    assert.equal(await got.text(), "v2");
    assert.equal(got.headers.get("x-conclave-version"), "2");
    assert.equal(got.headers.get("x-conclave-create-revision"), String(first.revision));
    const json = (await (await authorizedFetch(`${url}/v1/kv/app/config?format=json`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(json.value, b64("v2"));
    assert.equal(json.modRevision, first.revision + 1);
  });

  it("compare-and-set on the mod revision: 412 with the current revision on mismatch", async () => {
    const { revision } = (await (await put("cas", "a")).json()) as { revision: number };
    const stale = await put("cas", "b", `?prevRevision=${revision - 1}`);
    assert.equal(stale.status, 412);
    assert.equal(((await stale.json()) as { modRevision: number }).modRevision, revision);
    assert.equal(await (await authorizedFetch(`${url}/v1/kv/cas`)).text(), "a");
    assert.equal((await put("cas", "b", `?prevRevision=${revision}`)).status, 200);
    assert.equal((await put("fresh", "x", "?prevRevision=0")).status, 200, "0 = must not exist");
    assert.equal((await put("fresh", "y", "?prevRevision=0")).status, 412);
  });

  it("deletes, ranges by prefix with a limit, and answers 404 for a missing key", async () => {
    for (const key of ["r/a", "r/b", "r/c"]) await put(key, key);
    const range = (await (await authorizedFetch(`${url}/v1/kv?prefix=r/&limit=2`)).json()) as {
      kvs: { key: string; value: string }[];
      more: boolean;
    };
    assert.deepEqual(
      range.kvs.map((kv) => kv.key),
      ["r/a", "r/b"],
    );
    assert.equal(range.more, true);
    const deleted = (await (await authorizedFetch(`${url}/v1/kv/r/a`, { method: "DELETE" })).json()) as {
      deleted: number;
    };
    assert.equal(deleted.deleted, 1);
    assert.equal((await authorizedFetch(`${url}/v1/kv/r/a`)).status, 404);
  });

  it("runs a transaction: compares decide the branch, gets return values", async () => {
    await put("txn/k", "1");
    const { status, body } = await postJson(`${url}/v1/kv/txn`, {
      compare: [{ key: "txn/k", target: "value", operator: "=", value: b64("1") }],
      success: [
        { op: "put", key: "txn/k", value: b64("2") },
        { op: "get", key: "txn/k" },
      ],
      failure: [{ op: "delete", key: "txn/k" }],
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.succeeded, true);
    const results = body.results as { op: string; kv?: { value: string } }[];
    assert.equal(results[1]?.kv?.value, b64("2"));
    const bad = await postJson(`${url}/v1/kv/txn`, { compare: [{ key: "x", target: "nope" }] });
    assert.equal(bad.status, 400);
  });

  it("refuses an oversized value (413 naming the limit), a bad key and a bad lease id", async () => {
    const big = await authorizedFetch(`${url}/v1/kv/big`, {
      method: "PUT",
      body: new Uint8Array(1024 * 1024 + 1),
    });
    assert.equal(big.status, 413);
    assert.match(((await big.json()) as { error: string }).error, /larger than 1048576 bytes/);
    // Chunked, without a Content-Length: refused while it streams in, and nothing is written.
    const chunk = new Uint8Array(256 * 1024);
    let sent = 0;
    const streamed = await authorizedFetch(`${url}/v1/kv/big-streamed`, {
      method: "PUT",
      body: new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 5) controller.enqueue(chunk);
          else controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    assert.equal(streamed.status, 413);
    assert.match(((await streamed.json()) as { error: string }).error, /larger than 1048576 bytes/);
    assert.equal((await authorizedFetch(`${url}/v1/kv/big-streamed`)).status, 404);
    // A body streamed in pieces under the limit arrives whole.
    let pieces = 0;
    const assembled = await authorizedFetch(`${url}/v1/kv/streamed`, {
      method: "PUT",
      body: new ReadableStream<Uint8Array>({
        pull(controller) {
          if (pieces++ < 3) controller.enqueue(new TextEncoder().encode(`part${pieces};`));
          else controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    assert.equal(assembled.status, 200);
    assert.equal(await (await authorizedFetch(`${url}/v1/kv/streamed`)).text(), "part1;part2;part3;");
    assert.equal((await authorizedFetch(`${url}/v1/kv/%ZZ`)).status, 400);
    assert.equal((await authorizedFetch(`${url}/v1/kv/${"k".repeat(1025)}`)).status, 400);
    assert.equal((await put("k", "v", "?lease=abc")).status, 400);
    const missingLease = await put("k", "v", "?lease=999999");
    assert.equal(missingLease.status, 404);
    assert.equal(((await missingLease.json()) as { code: string }).code, "CONCLAVE_LEASE_NOT_FOUND");
  });

  it("a lease's keys are deleted through the log once it expires", async () => {
    const grant = await postJson(`${url}/v1/leases`, { ttlMs: 300 });
    assert.equal(grant.status, 200, JSON.stringify(grant.body));
    const leaseId = grant.body.leaseId as number;
    assert.equal((await put("ephemeral", "here", `?lease=${leaseId}`)).status, 200);
    const keepalive = await authorizedFetch(`${url}/v1/leases/${leaseId}/keepalive`, { method: "POST" });
    assert.equal(keepalive.status, 200);
    assert.equal((await authorizedFetch(`${url}/v1/kv/ephemeral`)).status, 200);
    await waitFor(
      "the lease to expire",
      5000,
      async () => (await authorizedFetch(`${url}/v1/kv/ephemeral`)).status === 404,
    );
    const late = await authorizedFetch(`${url}/v1/leases/${leaseId}/keepalive`, { method: "POST" });
    assert.equal(late.status, 404);
    const revoked = await postJson(`${url}/v1/leases`, { ttlMs: 60_000 });
    const id = revoked.body.leaseId as number;
    await put("held", "x", `?lease=${id}`);
    const revoke = (await (await authorizedFetch(`${url}/v1/leases/${id}`, { method: "DELETE" })).json()) as {
      deletedKeys: number;
    };
    assert.equal(revoke.deletedKeys, 1);
  });

  it("streams watch history then live changes as NDJSON, and ends when the client disconnects", async () => {
    const { revision } = (await (await put("w/1", "one")).json()) as { revision: number };
    const controller = new AbortController();
    const response = await authorizedFetch(`${url}/v1/watch?prefix=w/&fromRevision=${revision}`, {
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/x-ndjson");
    const reader = response.body?.getReader();
    assert.ok(reader);
    const lines: Record<string, unknown>[] = [];
    let buffered = "";
    const readLines = async (count: number): Promise<void> => {
      while (lines.length < count) {
        const { done, value } = await reader.read();
        if (done) throw new Error("the stream ended early");
        buffered += Buffer.from(value).toString("utf8");
        const parts = buffered.split("\n");
        buffered = parts.pop() ?? "";
        for (const part of parts) lines.push(JSON.parse(part) as Record<string, unknown>);
      }
    };
    await readLines(1);
    assert.deepEqual(lines[0], { revision, key: "w/1", type: "put", value: b64("one") });
    await put("other", "not watched");
    await put("w/2", "two");
    await authorizedFetch(`${url}/v1/kv/w/1`, { method: "DELETE" });
    await readLines(3);
    assert.deepEqual(
      lines.map((line) => [line.key, line.type]),
      [
        ["w/1", "put"],
        ["w/2", "put"],
        ["w/1", "delete"],
      ],
    );
    controller.abort();
    await reader.cancel().catch(() => {});
    assert.equal((await authorizedFetch(`${url}/health/live`)).status, 200, "the node still serves");
  });

  it("a compacted start revision is a 410 naming the oldest revision kept", async () => {
    for (let i = 0; i < 25; i++) await put("churn", String(i));
    const response = await authorizedFetch(`${url}/v1/watch?fromRevision=1`);
    assert.equal(response.status, 410);
    const body = (await response.json()) as { code: string; oldestRevision: number; error: string };
    assert.equal(body.code, "CONCLAVE_WATCH_COMPACTED");
    assert.ok(body.oldestRevision > 1);
    assert.match(body.error, /oldest revision still available/);
  });
});
