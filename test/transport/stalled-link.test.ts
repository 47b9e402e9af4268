/**
 * A connection that silently stops carrying data (a partition: packets dropped, no FIN, no RST)
 * is redialed once its peer has answered nothing we sent for `peerSilenceMsMax`. Without that,
 * TCP's doubling retransmission timeout kept a healed link silent for seconds (minutes after a
 * long cut); the tier-3 partition test (test/e2e/partitions.test.ts) saw 1.8–3.4 s.
 *
 * Node 0 reaches node 1 through a proxy that can stall the connections it carries (it keeps them
 * open and drops their bytes); node 1 answers every ping straight to node 0.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { listenOnce, redirect, startTcpCluster, waitFor } from "./tcp-fixture.ts";

const peerSilenceMsMax = 400;

/** A TCP proxy to `port` whose current connections can be stalled; new ones always flow. */
async function stallingProxy(port: number) {
  const stalled = new Set<Socket>();
  const flowing = new Set<Socket>();
  const proxy = await listenOnce((client) => {
    const upstream = connect(port, "127.0.0.1");
    flowing.add(client);
    client.on("data", (chunk: Buffer) => {
      if (!stalled.has(client)) upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!stalled.has(client)) client.write(chunk);
    });
    const end = (): void => {
      flowing.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    client.on("error", end);
    upstream.on("close", end);
    upstream.on("error", end);
  });
  return {
    port: proxy.port,
    connections: () => flowing.size,
    /** From now on the open connections drop every byte, in both directions, and stay open. */
    stall: () => {
      for (const socket of flowing) stalled.add(socket);
    },
    close: proxy.close,
  };
}

describe("a stalled link is redialed", () => {
  it("when the peer answers nothing for peerSilenceMsMax while we send, and not before", async () => {
    const cluster = await startTcpCluster(2, () => ({ peerSilenceMsMax }));
    const [sender, answerer] = cluster.nodes;
    assert.ok(sender && answerer);
    const proxy = await stallingProxy(answerer.address.port);
    redirect(cluster, "n1", proxy.port);
    // Node 1 answers each ping (on its own link to node 0, which the proxy does not carry).
    answerer.transport.onMessage((from, message) => {
      answerer.received.push({ from, message });
      answerer.transport.send("n0", { pong: (message as { ping: number }).ping });
    });
    let seq = 0;
    const pinger = setInterval(() => sender.transport.send("n1", { ping: ++seq }), 50);
    const pongs = (): number => sender.received.filter((r) => (r.message as { pong?: number }).pong).length;
    try {
      await waitFor(() => pongs() > 5, "pongs over the healthy link");
      // Answered traffic for several silence periods: nothing is reset.
      await delay(3 * peerSilenceMsMax);
      assert.equal(sender.transport.stats().stalledLinksReset, 0, "a link whose peer answers is left alone");

      proxy.stall();
      const stalledAt = performance.now();
      const pongsAtStall = pongs();
      await waitFor(() => pongs() > pongsAtStall + 5, "pongs again after the stall", 5_000);
      const recoveredMs = performance.now() - stalledAt;
      // Either side may notice first: the sender (it pings and hears no pong), or the answerer
      // (its last pong went unanswered too, and it closes the sender's connection to it as well).
      const resets = (node: typeof sender): number => node.transport.stats().stalledLinksReset;
      assert.ok(resets(sender) + resets(answerer) >= 1, "the stalled link was reset");
      console.log(`# resets: sender ${resets(sender)}, answerer ${resets(answerer)}`);
      assert.ok(
        [sender, answerer].some((node) =>
          node.events.some(
            (event) => event.type === "disconnected" && /nothing heard/.test(event.reason ?? ""),
          ),
        ),
        "a disconnected event says why",
      );
      assert.ok(
        recoveredMs >= peerSilenceMsMax,
        `not reset before the silence bound (${Math.round(recoveredMs)} ms)`,
      );
      console.log(`# stalled connection replaced; pongs again ${Math.round(recoveredMs)} ms after the stall`);

      // An idle link (nothing sent) is never reset, however long the peer is silent.
      clearInterval(pinger);
      const resetsBefore = resets(sender);
      await delay(3 * peerSilenceMsMax);
      assert.equal(resets(sender), resetsBefore, "idle links are not reset");
    } finally {
      clearInterval(pinger);
      await cluster.stop();
      await proxy.close();
    }
  });
});
