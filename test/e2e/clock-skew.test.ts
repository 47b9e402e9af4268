/**
 * Real clocks, really wrong: three `conclave start` processes under libfaketime (Debian's
 * `libfaketime`), each reading its wall clock offset from a file of its own that the test rewrites
 * while they run (the monotonic clock is left alone, as NTP leaves it). What a user relies on:
 * - `conclave status` shows a member whose clock runs a minute behind, and warns;
 * - a lease granted and kept alive through that member lasts its TTL by the primary's clock (the
 *   primary restamps forwarded lease commands), so its keys are not deleted at once;
 * - SQL's `CURRENT_TIMESTAMP` & co. sent to that member are the primary's time, not a minute old;
 * - the primary's clock stepping an hour forward (an NTP step) expires no lease early, and the
 *   lease still expires about one TTL after its last keep-alive, not an hour later.
 * Skips, saying why, where libfaketime is not installed (.ci/apt-packages installs it).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { authorizedFetch } from "./api-token.ts";
import { cli } from "./cli-process.ts";
import { agreedPrimary, ProcessCluster, waitFor } from "./node-processes.ts";

const libfaketime = ["x86_64-linux-gnu", "aarch64-linux-gnu"]
  .map((triplet) => `/usr/lib/${triplet}/faketime/libfaketime.so.1`)
  .find((path) => existsSync(path));
const skip = libfaketime === undefined ? "libfaketime is not installed (apt-get install libfaketime)" : false;
const ttlMs = 3_000;
/** libfaketime reads each offset file again at most this often (FAKETIME_CACHE_DURATION, seconds). */
const offsetRereadMs = 1_000;

async function call(
  url: string,
  method: string,
  body?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await authorizedFetch(url, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("wall clocks that disagree or jump, under libfaketime", { skip, timeout: 120_000 }, () => {
  const offsets = mkdtempSync(join(tmpdir(), "conclave-clocks-"));
  const offsetFile = (name: string): string => join(offsets, name);
  /** Sets a member's wall clock offset (libfaketime's syntax: "+0", "-60s", "+3600s"). */
  const setOffset = (name: string, offset: string): void => writeFileSync(offsetFile(name), `${offset}\n`);
  let cluster: ProcessCluster;
  let primary: string;
  let secondary: string;

  before(async () => {
    const names = ["n1", "n2", "n3"];
    for (const name of names) setOffset(name, "+0");
    cluster = await ProcessCluster.create(3, {
      // `env` execs node in place, so the PID is still the node's (and SIGKILL by PID works).
      launcher: (name) => [
        "env",
        `LD_PRELOAD=${libfaketime as string}`,
        `FAKETIME_TIMESTAMP_FILE=${offsetFile(name)}`,
        `FAKETIME_CACHE_DURATION=${offsetRereadMs / 1000}`,
        "FAKETIME_DONT_FAKE_MONOTONIC=1",
      ],
    });
    for (const name of names) cluster.start(name);
    primary = await agreedPrimary(cluster, names, "the cluster to start");
    secondary = names.find((name) => name !== primary) as string;
  });
  after(async () => {
    await cluster?.killAll();
    rmSync(offsets, { recursive: true, force: true });
  });

  it("conclave status shows a member whose clock runs a minute behind, and warns", async () => {
    setOffset(secondary, "-60s");
    const row = await waitFor(`${primary} to measure ${secondary}'s clock`, 20_000, async () => {
      const result = await cli(["status", "--json", "--endpoint", cluster.url(primary)]);
      assert.equal(result.code, 0, result.stderr);
      const view = JSON.parse(result.stdout) as {
        members: { raftId: string; clockOffsetMs: number | null; clockWarning: boolean }[];
      };
      const found = view.members.find((member) => member.raftId === secondary);
      return found?.clockOffsetMs != null && found.clockOffsetMs < -30_000 ? found : null;
    });
    assert.ok(Math.abs((row.clockOffsetMs as number) + 60_000) < 2_000, `offset ${row.clockOffsetMs} ms`);
    assert.equal(row.clockWarning, true);
    const table = await cli(["status", "--endpoint", cluster.url(primary)]);
    assert.match(table.stdout, new RegExp(`${secondary}@\\S+ .* -\\d{5}ms \\(!\\)`));
  });

  it("a lease granted and kept alive through that member lasts its TTL by the primary's clock", async () => {
    const askedAtMs = Date.now();
    const grant = await call(`${cluster.url(secondary)}/v1/leases`, "POST", JSON.stringify({ ttlMs }));
    assert.equal(grant.status, 200, JSON.stringify(grant.body));
    const leaseId = grant.body.leaseId as number;
    assert.ok(
      (grant.body.expiresAtMs as number) >= askedAtMs + ttlMs - 500,
      `expires at ${grant.body.expiresAtMs}, asked at ${askedAtMs}`,
    );
    const put = await call(`${cluster.url(secondary)}/v1/kv/clocks/behind?lease=${leaseId}`, "PUT", "v");
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await sleep(1_000);
    assert.equal((await call(`${cluster.url(primary)}/v1/kv/clocks/behind?format=json`, "GET")).status, 200);
    const keptAtMs = Date.now();
    const kept = await call(`${cluster.url(secondary)}/v1/leases/${leaseId}/keepalive`, "POST");
    assert.equal(kept.status, 200, JSON.stringify(kept.body));
    assert.ok(
      (kept.body.expiresAtMs as number) >= keptAtMs + ttlMs - 500,
      `kept until ${kept.body.expiresAtMs}`,
    );
    await call(`${cluster.url(primary)}/v1/leases/${leaseId}`, "DELETE");
  });

  it("SQL's CURRENT_TIMESTAMP written through that member is the primary's time, not its own", async () => {
    const execute = (member: string, sql: string) =>
      call(`${cluster.url(member)}/v1/sql/execute`, "POST", JSON.stringify({ statements: [{ sql }] }));
    const created = await execute(primary, "CREATE TABLE IF NOT EXISTS clock_rows (via TEXT, at TEXT)");
    assert.equal(created.status, 200, JSON.stringify(created.body));
    // The member a minute behind knows the primary's offset from its pings (the first test
    // waited until the primary measured it; the secondary's own pings run as often).
    const inserted = await execute(
      secondary,
      "INSERT INTO clock_rows (via, at) VALUES ('secondary', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    );
    assert.equal(inserted.status, 200, JSON.stringify(inserted.body));
    const read = await call(
      `${cluster.url(primary)}/v1/sql/query`,
      "POST",
      JSON.stringify({ sql: "SELECT at FROM clock_rows WHERE via = 'secondary'" }),
    );
    assert.equal(read.status, 200, JSON.stringify(read.body));
    const [row] = read.body.rows as unknown[];
    const at = Date.parse(String(Array.isArray(row) ? row[0] : (row as { at: string }).at));
    // This test process runs on the real clock, as the primary does.
    assert.ok(
      Math.abs(at - Date.now()) < 5_000,
      `written at ${new Date(at).toISOString()}, now ${new Date().toISOString()}`,
    );
  });

  it("the primary's clock stepping an hour forward expires no lease early", async () => {
    const grant = await call(`${cluster.url(primary)}/v1/leases`, "POST", JSON.stringify({ ttlMs }));
    assert.equal(grant.status, 200, JSON.stringify(grant.body));
    const leaseId = grant.body.leaseId as number;
    const put = await call(`${cluster.url(primary)}/v1/kv/clocks/stepped?lease=${leaseId}`, "PUT", "v");
    assert.equal(put.status, 200, JSON.stringify(put.body));
    setOffset(primary, "+3600s");
    // Once the step is seen (the offset file is read again within a second), keep the lease
    // alive for a while: without the monotonic lease clock the next check (250 ms) expires it.
    const keepUntil = performance.now() + offsetRereadMs + 1_500;
    let lastKeptAtMs = 0;
    while (performance.now() < keepUntil) {
      const kept = await call(`${cluster.url(primary)}/v1/leases/${leaseId}/keepalive`, "POST");
      assert.equal(kept.status, 200, `the lease is still alive after the step: ${JSON.stringify(kept.body)}`);
      lastKeptAtMs = performance.now();
      await sleep(500);
    }
    const key = await call(`${cluster.url(primary)}/v1/kv/clocks/stepped?format=json`, "GET");
    assert.equal(key.status, 200, "the lease's key is still there");
    // Left alone, the lease expires about one TTL after its last keep-alive, not an hour later.
    await waitFor("the lease to expire", 15_000, async () => {
      const { status } = await call(`${cluster.url(primary)}/v1/kv/clocks/stepped?format=json`, "GET");
      return status === 404 ? true : null;
    });
    assert.ok(performance.now() >= lastKeptAtMs + ttlMs - 500, "not before its TTL ran out");
  });
});
