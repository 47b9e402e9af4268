import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type TcpNode, WRONG_COOKIE, withTcpCluster } from "./tcp-fixture.ts";

/** Keeps messages waiting from `a` to `b` (and back) for `ms`, so both always want to connect. */
async function keepSending(a: TcpNode, b: TcpNode, ms: number): Promise<void> {
  const began = performance.now();
  while (performance.now() - began < ms) {
    a.transport.send("n1", { ping: true });
    b.transport.send("n0", { ping: true });
    await sleep(10);
  }
}

/**
 * Dial attempts a backoff allows in 1.5 s. The delay after the n-th failure is drawn between 50 ms
 * and a window that doubles from 50 ms to 2 s (full jitter): usually 5–8 attempts fit, 9 in about
 * 1 run of 250 and 10 in 1 of 3,500 (a million simulated runs; a bound of 8 failed once in CI),
 * 12 or more in none. A tight loop makes hundreds (a refused handshake takes a few ms).
 */
const attemptsIn1500MsMax = 11;

describe("reconnect backoff", () => {
  it("a peer that keeps refusing us is redialed with growing delays, not in a tight loop", async () => {
    await withTcpCluster(
      2,
      (index) => (index === 1 ? { cookie: WRONG_COOKIE } : {}),
      async ({ nodes: [a, b] }) => {
        assert(a && b);
        await keepSending(a, b, 1500);
        const attemptsA = a.events.filter(
          (e) => e.type === "auth-failed" && e.direction === "outbound",
        ).length;
        const refusedAtB = b.events.filter(
          (e) => e.type === "auth-failed" && e.direction === "inbound",
        ).length;
        assert.ok(
          attemptsA >= 1 && attemptsA <= attemptsIn1500MsMax,
          `a dialed b ${attemptsA} times in 1.5 s`,
        );
        assert.ok(refusedAtB <= attemptsIn1500MsMax, `b refused ${refusedAtB} handshakes in 1.5 s`);
      },
    );
  });

  it("so is a peer that accepts our proof and then closes (it no longer counts us as a member)", async () => {
    await withTcpCluster(
      2,
      () => ({}),
      async ({ nodes: [a, b], peers }) => {
        assert(a && b);
        // b drops a from its membership; a still dials b. b answers a genuine challenge (it learns
        // nothing from refusing earlier), a's handshake completes on its side, then b closes.
        b.transport.setPeers(peers.filter((peer) => peer.nodeId !== "n0"));
        await keepSending(a, b, 1500);
        const refusedAtB = b.events.filter(
          (e) => e.type === "auth-failed" && e.direction === "inbound",
        ).length;
        assert.ok(
          refusedAtB >= 1 && refusedAtB <= attemptsIn1500MsMax,
          `b refused a ${refusedAtB} times in 1.5 s`,
        );
      },
    );
  });
});
