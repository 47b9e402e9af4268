/**
 * Leases when members' wall clocks disagree or jump (each member's clock is its own,
 * `NodeOptions.wallClockMs`):
 * - granted and kept alive through a secondary whose clock runs a minute behind the primary's:
 *   the primary restamps the forwarded command with its own clock (the one that expires leases),
 *   so the lease lasts its TTL by the primary's clock — not a minute less, which would expire it
 *   (and delete its keys) at once; the members' offset shows in the cluster status as it would
 *   with real skew;
 * - the primary's wall clock stepping an hour forward (NTP) mid-term: leases keep their TTL,
 *   because within a term the primary times leases by its monotonic clock.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { authorizedFetch } from "../e2e/api-token.ts";
import { waitFor } from "../e2e/node-processes.ts";
import { InProcessCluster, postJson, type TestNode } from "./node-fixture.ts";

const behindMs = 60_000;
const ttlMs = 3_000;

async function send(url: string, method: string, headers: Record<string, string> = {}, body?: string) {
  const response = await authorizedFetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("leases when members' clocks disagree or jump", { timeout: 60_000 }, () => {
  const skewMs = new Map<string, number>();
  let cluster: InProcessCluster;
  let primary: TestNode;
  let secondary: TestNode;

  before(async () => {
    // 50 ms ticks, as the other 3-member route tests: the tests keep the primary found here.
    cluster = await InProcessCluster.start(
      3,
      { tickIntervalMs: 50 },
      { optionsOf: (name) => ({ wallClockMs: () => Date.now() + (skewMs.get(name) ?? 0) }) },
    );
    primary = await cluster.leader();
    secondary = cluster.followers(primary)[0] as TestNode;
    skewMs.set(secondary.name, -behindMs);
  });
  after(async () => {
    await cluster?.stop();
  });

  it("the members see the secondary's clock a minute behind", async () => {
    const offset = await waitFor("the primary to measure the secondary's clock", 10_000, async () => {
      const { body } = await send(`${primary.url}/v1/cluster/status`, "GET");
      const rows = body.members as { raftId: string; clockOffsetMs: number | null; clockWarning: boolean }[];
      const row = rows.find((member) => member.raftId === secondary.name);
      return row?.clockOffsetMs != null && row.clockOffsetMs < -behindMs / 2 ? row : null;
    });
    assert.ok(
      Math.abs((offset.clockOffsetMs as number) + behindMs) < 1_000,
      `offset ${offset.clockOffsetMs}`,
    );
    assert.equal(offset.clockWarning, true);
  });

  it("a grant through the secondary lasts its TTL by the primary's clock, and so do its keys", async () => {
    const askedAtMs = Date.now();
    const grant = await postJson(`${secondary.url}/v1/leases`, { ttlMs });
    assert.equal(grant.status, 200, JSON.stringify(grant.body));
    const leaseId = grant.body.leaseId as number;
    const expiresAtMs = grant.body.expiresAtMs as number;
    assert.ok(
      expiresAtMs >= askedAtMs + ttlMs && expiresAtMs <= Date.now() + ttlMs,
      `expires at ${expiresAtMs}, asked at ${askedAtMs}: the primary's clock + TTL`,
    );
    const put = await send(`${secondary.url}/v1/kv/skew/held?lease=${leaseId}`, "PUT", {}, "v");
    assert.equal(put.status, 200, JSON.stringify(put.body));
    // Well past the primary's expiry checks (every 250 ms): the key is still there.
    await sleep(1_000);
    assert.equal((await send(`${primary.url}/v1/kv/skew/held?format=json`, "GET")).status, 200);

    // A keep-alive through the secondary extends it by the primary's clock too.
    const keptAtMs = Date.now();
    const kept = await send(`${secondary.url}/v1/leases/${leaseId}/keepalive`, "POST");
    assert.equal(kept.status, 200, JSON.stringify(kept.body));
    assert.ok((kept.body.expiresAtMs as number) >= keptAtMs + ttlMs, `kept until ${kept.body.expiresAtMs}`);

    // Left alone, the lease expires one TTL later by the primary's clock, keys and all.
    await waitFor("the lease to expire", 10_000, async () => {
      const { status } = await send(`${primary.url}/v1/kv/skew/held?format=json`, "GET");
      return status === 404 ? true : null;
    });
    assert.ok(Date.now() >= keptAtMs + ttlMs, "not before its TTL ran out by the primary's clock");
  });

  it("a grant with an Idempotency-Key through the secondary is stamped by the primary too", async () => {
    const askedAtMs = Date.now();
    const headers = { "content-type": "application/json", "idempotency-key": "skewed-grant-1" };
    const body = JSON.stringify({ ttlMs });
    const first = await send(`${secondary.url}/v1/leases`, "POST", headers, body);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.ok(
      (first.body.expiresAtMs as number) >= askedAtMs + ttlMs,
      `expires at ${first.body.expiresAtMs}`,
    );
    const retry = await send(`${secondary.url}/v1/leases`, "POST", headers, body);
    assert.deepEqual(retry.body, first.body, "the retry is replayed: same lease, same expiry");
  });
  it("the primary's wall clock stepping an hour forward mid-term expires no lease early", async () => {
    const grant = await postJson(`${primary.url}/v1/leases`, { ttlMs });
    assert.equal(grant.status, 200, JSON.stringify(grant.body));
    const leaseId = grant.body.leaseId as number;
    const put = await send(`${primary.url}/v1/kv/skew/step?lease=${leaseId}`, "PUT", {}, "v");
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const steppedAtMs = Date.now();
    skewMs.set(primary.name, 3_600_000);
    try {
      // Several expiry checks later (every 250 ms), the key is still there…
      await sleep(1_000);
      assert.equal(cluster.nodes.filter(({ node }) => node.runtime.status().role === "leader").length, 1);
      assert.equal((await send(`${primary.url}/v1/kv/skew/step?format=json`, "GET")).status, 200);
      // …and a keep-alive after the step extends the lease by its TTL, not by an hour.
      const kept = await send(`${primary.url}/v1/leases/${leaseId}/keepalive`, "POST");
      assert.equal(kept.status, 200, JSON.stringify(kept.body));
      assert.ok(
        (kept.body.expiresAtMs as number) < (grant.body.expiresAtMs as number) + 60_000,
        `kept until ${kept.body.expiresAtMs}, granted until ${grant.body.expiresAtMs}`,
      );
      // Left alone, it expires about one TTL after that keep-alive.
      await waitFor("the lease to expire", 10_000, async () => {
        const { status } = await send(`${primary.url}/v1/kv/skew/step?format=json`, "GET");
        return status === 404 ? true : null;
      });
      assert.ok(Date.now() >= steppedAtMs + 1_000 + ttlMs - 100, "not before its TTL ran out");
    } finally {
      skewMs.delete(primary.name);
    }
  });
});
