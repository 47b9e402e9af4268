/**
 * The primary's lease expiry (src/cluster/lease-expiry.ts) across a change of primary whose clock
 * runs ahead: each new primary renews every lease by its own clock before it expires anything,
 * so a lease never expires early by the skew between two members' clocks. The runtime here is a
 * fake that applies each proposal at once to a small model of the lease table (the table's own
 * SQL is tested in test/sqlite/kv.test.ts); what is under test is the order of the proposals.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { LeaseExpiry } from "../../src/cluster/lease-expiry.ts";
import type { DatabaseCommand } from "../../src/ports/database.ts";
import type { Logger } from "../../src/ports/logger.ts";

const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

interface Lease {
  ttlMs: number;
  expiresAtMs: number;
}

function harness() {
  const leases = new Map<number, Lease>();
  const proposed: { op: string; term: number; nowMs: number }[] = [];
  const state = { term: 1, role: "leader", clockMs: 0 };
  const runtime = {
    running: true,
    status: () => ({ role: state.role, term: state.term }) as ReturnType<LeaseExpiryRuntime["status"]>,
    propose: async (data: Uint8Array) => {
      const command = JSON.parse(Buffer.from(data).toString("utf8")) as { op: string; nowMs: number };
      proposed.push({ op: command.op, term: state.term, nowMs: command.nowMs });
      if (command.op === "lease-renew-all")
        for (const lease of leases.values())
          lease.expiresAtMs = Math.max(lease.expiresAtMs, command.nowMs + lease.ttlMs);
      if (command.op === "lease-expire")
        for (const [id, lease] of leases) if (lease.expiresAtMs <= command.nowMs) leases.delete(id);
      return { index: proposed.length, term: state.term, result: { ok: true } };
    },
  } as unknown as LeaseExpiryRuntime;
  const database = {
    earliestLeaseExpiryMs: () =>
      leases.size === 0 ? null : Math.min(...[...leases.values()].map((lease) => lease.expiresAtMs)),
    encodeCommand: (command: DatabaseCommand) => Buffer.from(JSON.stringify(command)),
  };
  const expiry = new LeaseExpiry({
    runtime,
    database,
    leaseClockMs: () => state.clockMs,
    logger: silentLogger,
  });
  const check = async (): Promise<void> => {
    expiry.check();
    await nextTurn();
    await nextTurn();
  };
  return { leases, proposed, state, check };
}
type LeaseExpiryRuntime = ConstructorParameters<typeof LeaseExpiry>[0]["runtime"];

it("a new primary renews every lease by its clock before it expires any, once per term", async () => {
  const { leases, proposed, state, check } = harness();
  // Term 1: no lease, nothing written.
  state.clockMs = 9_000;
  await check();
  assert.equal(proposed.length, 0, "a primary without leases writes nothing");
  // A lease of 1,000 ms granted at 10,000 by the term-1 primary's clock: renewed once, at once.
  state.clockMs = 10_000;
  leases.set(1, { ttlMs: 1000, expiresAtMs: 11_000 });
  await check();
  state.clockMs = 10_500;
  await check();
  assert.deepEqual([...proposed], [{ op: "lease-renew-all", term: 1, nowMs: 10_000 }]);

  // The primary fails at 10,500; the new one's clock runs 5,000 ms ahead of the old one's.
  state.term = 2;
  state.clockMs = 15_500;
  await check();
  assert.deepEqual(
    proposed.at(-1),
    { op: "lease-renew-all", term: 2, nowMs: 15_500 },
    "a renewal, not an expiry",
  );
  assert.equal(leases.get(1)?.expiresAtMs, 16_500, "renewed by the new primary's clock");
  await check();
  assert.ok(leases.has(1), "not expired by the skew (the old expiry, 11,000, is behind this clock)");
  assert.ok(!proposed.some((p) => p.op === "lease-expire"), "no expiry was proposed before the renewal");

  // A full TTL later by the new primary's clock, it expires.
  state.clockMs = 16_500;
  await check();
  assert.deepEqual(proposed.at(-1), { op: "lease-expire", term: 2, nowMs: 16_500 });
  assert.equal(leases.size, 0);

  // A follower proposes nothing; the next term renews again before its first expiry.
  leases.set(2, { ttlMs: 500, expiresAtMs: 16_400 });
  state.role = "follower";
  state.term = 3;
  const before = proposed.length;
  await check();
  assert.equal(proposed.length, before);
  state.role = "leader";
  await check();
  assert.deepEqual(proposed.at(-1), { op: "lease-renew-all", term: 3, nowMs: 16_500 });
  assert.equal(leases.get(2)?.expiresAtMs, 17_000);
});
