/** TCP transport behaviour beyond the port contract: configuration, queues, reconnects, membership. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TcpTransport } from "../../src/adapters/transport/tcp-transport.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import {
  CLUSTER_ID,
  COOKIE,
  nodeName,
  startTcpCluster,
  type TcpCluster,
  type TcpNode,
  waitFor,
  withTcpCluster,
} from "./tcp-fixture.ts";

const self = { nodeId: "n9", name: nodeName(9) };
const listen = { host: "127.0.0.1", port: 0 };

describe("TCP transport", { timeout: 20_000 }, () => {
  it("refuses a weak cookie, bad limits and unusable TLS material at construction", () => {
    const base = { self, clusterId: CLUSTER_ID, cookie: COOKIE, listen };
    const refused: Array<[object, string]> = [
      [{ ...base, cookie: "changeme" }, "CONCLAVE_COOKIE_WEAK"],
      [{ ...base, cookie: "" }, "CONCLAVE_COOKIE_MISSING"],
      [{ ...base, frameBytesMax: 0 }, "CONCLAVE_CONFIG_INVALID"],
      [{ ...base, reconnectDelayMsMin: 500, reconnectDelayMsMax: 100 }, "CONCLAVE_CONFIG_INVALID"],
      [{ ...base, tls: { cert: "not a pem", key: "nope", ca: "nope" } }, "CONCLAVE_TLS_INVALID"],
    ];
    for (const [options, code] of refused) {
      assert.throws(
        () => new TcpTransport(options as ConstructorParameters<typeof TcpTransport>[0]),
        (error) => isConclaveError(error, code),
        code,
      );
    }
  });

  it("fails to start with CONCLAVE_TRANSPORT_LISTEN_FAILED when the port is taken", async () => {
    await withTcpCluster(
      1,
      () => ({}),
      async ({ nodes: [node] }) => {
        const port = node?.address.port ?? 0;
        const second = new TcpTransport({
          self,
          clusterId: CLUSTER_ID,
          cookie: COOKIE,
          listen: { ...listen, port },
        });
        await assert.rejects(second.start(), (error) =>
          isConclaveError(error, "CONCLAVE_TRANSPORT_LISTEN_FAILED"),
        );
        await second.stop();
      },
    );
  });

  it("drops and counts messages beyond the per-peer queue bound while the peer is unreachable", async () => {
    await withTcpCluster(
      2,
      () => ({ sendQueueMessagesMax: 10 }),
      async ({ nodes: [a, b], peers }) => {
        assert(a && b);
        await b.transport.stop(); // n1's address now refuses connections
        a.transport.setPeers(peers);
        for (let i = 0; i < 10; i++) assert.equal(a.transport.send("n1", { i }), true, `message ${i} queued`);
        assert.equal(a.transport.send("n1", { i: 10 }), false);
        assert.equal(a.transport.stats().messagesDropped, 1);
      },
    );
  });

  it("reconnects with backoff after the peer restarts on the same address", async () => {
    const cluster = await startTcpCluster(2, () => ({ reconnectDelayMsMax: 200 }));
    const [a, b] = cluster.nodes;
    assert(a && b);
    let restarted: TcpTransport | null = null;
    try {
      await deliverOnceThenStop(a, b);
      const received: unknown[] = [];
      restarted = await restartN1(cluster, b.address.port, received);
      // Keep sending, as Raft does with heartbeats: messages sent while the link is down are
      // lost or late, and once it is back they arrive.
      await waitFor(() => {
        a.transport.send("n1", { after: true });
        return received.length > 0;
      }, "a message to reach the restarted peer");
      assert(a.events.some((event) => event.type === "disconnected" && event.direction === "outbound"));
      assert.equal(
        a.events.filter((event) => event.type === "connected" && event.direction === "outbound").length,
        2,
      );
    } finally {
      await restarted?.stop();
      await cluster.stop();
    }
  });

  it("redials a peer at once, not after the backoff, when the restarted peer connects to us", async () => {
    // A backoff of at least 1.5 s: without the redial the first message would take that long.
    const cluster = await startTcpCluster(2, () => ({
      reconnectDelayMsMin: 1500,
      reconnectDelayMsMax: 3000,
    }));
    const [a, b] = cluster.nodes;
    assert(a && b);
    let restarted: TcpTransport | null = null;
    try {
      await deliverOnceThenStop(a, b);
      // a's link fails and backs off; its next message waits in the queue.
      await waitFor(
        () => a.events.some((event) => event.type === "disconnected" && event.direction === "outbound"),
        "a's link to fail",
      );
      a.transport.send("n1", { queued: true });
      const received: unknown[] = [];
      restarted = await restartN1(cluster, b.address.port, received);
      const startedAtMs = performance.now();
      restarted.send("n0", { back: true }); // the restarted peer's first message to a
      await waitFor(() => received.length > 0, "a's queued message to reach the restarted peer");
      const tookMs = performance.now() - startedAtMs;
      assert.ok(tookMs < 1000, `it arrived ${Math.round(tookMs)} ms after the peer came back`);
      assert.deepEqual(received[0], { queued: true });
    } finally {
      await restarted?.stop();
      await cluster.stop();
    }
  });

  it("writes what one piece of code sends once it yields, together, not at the next event-loop turn", async () => {
    await withOpenLink(async (a, b) => {
      const before = a.transport.stats().messagesOut;
      for (let i = 0; i < 3; i++) a.transport.send("n1", { i });
      assert.equal(a.transport.stats().messagesOut, before, "nothing is written while the sender runs");
      // One microtask later, before any I/O or timer callback: a leader's appends leave as it
      // starts its own log write, not a turn later.
      await Promise.resolve();
      assert.equal(a.transport.stats().messagesOut, before + 3);
      await waitFor(() => b.received.length === 4, "the three messages");
      assert.deepEqual(
        b.received.slice(1).map((r) => r.message),
        [{ i: 0 }, { i: 1 }, { i: 2 }],
      );
    });
  });

  it("coalesced messages wait for the end of the event-loop turn and share one frame", async () => {
    await withOpenLink(async (a, b) => {
      const before = a.transport.stats();
      for (let i = 0; i < 3; i++) {
        a.transport.send("n1", { coalesced: i }, { coalesce: true });
        await Promise.resolve(); // the sending code yields: a plain message would be written now
      }
      assert.equal(a.transport.stats().messagesOut, before.messagesOut, "still waiting for the turn's end");
      await new Promise((resolve) => setImmediate(resolve));
      const after = a.transport.stats();
      assert.equal(after.messagesOut - before.messagesOut, 3);
      assert.equal(after.framesOut - before.framesOut, 1, "one frame for the three");
      // A plain message sent after a coalesced one takes it along at its own (sooner) flush.
      a.transport.send("n1", { coalesced: 3 }, { coalesce: true });
      a.transport.send("n1", { plain: true });
      await Promise.resolve();
      assert.equal(a.transport.stats().messagesOut - after.messagesOut, 2);
      await waitFor(() => b.received.length === 6, "the five messages");
      assert.deepEqual(
        b.received.slice(1).map((r) => r.message),
        [{ coalesced: 0 }, { coalesced: 1 }, { coalesced: 2 }, { coalesced: 3 }, { plain: true }],
      );
    });
  });

  it("flush() writes what was queued at once, before the sending code yields", async () => {
    await withOpenLink(async (a, b) => {
      const before = a.transport.stats().messagesOut;
      a.transport.send("n1", { ack: 1 });
      a.transport.flush();
      assert.equal(a.transport.stats().messagesOut, before + 1, "written inside flush()");
      a.transport.flush(); // nothing queued: nothing written twice
      await waitFor(() => b.received.length === 2, "the flushed message");
      assert.equal(a.transport.stats().messagesOut, before + 1);
    });
  });

  it("one flush's messages share frames, each within frameBytesMax, and arrive whole and in order", async () => {
    const frameBytesMax = 2000;
    await withOpenLink(
      async (a, b) => {
        const before = a.transport.stats();
        const sizes = [600, 600, 600, 10, 1900, 1972, 1973, 5, 300, 300, 300, 300, 300, 300, 300];
        const sent = sizes.map((size, i) => ({ i, text: "x".repeat(size) }));
        // 1973 characters encode to 1,973 + 3 (string header) + 2 × 3 (keys, record header) ≥ the
        // limit less the frame's 28 header bytes: refused at send, counted, never on the wire.
        const accepted = sent.map((message) => a.transport.send("n1", message));
        const dropped = accepted.filter((ok) => !ok).length;
        assert.ok(dropped >= 1, "the message that cannot fit a frame is dropped");
        assert.equal(a.transport.stats().messagesDropped - before.messagesDropped, dropped);
        const expected = sent.filter((_, at) => accepted[at]);
        await waitFor(() => b.received.length === 1 + expected.length, "every accepted message");
        assert.deepEqual(
          b.received.slice(1).map((r) => r.message),
          expected,
        );
        const after = a.transport.stats();
        assert.equal(after.protocolErrors + b.transport.stats().protocolErrors, 0);
        // Alone, each message would have cost a frame header (4 + 24 bytes); shared, less.
        const payloadBytes = after.bytesOut - before.bytesOut;
        const aloneBytes = expected.reduce((sum, message) => sum + 32 + JSON.stringify(message).length, 0);
        assert.ok(payloadBytes < aloneBytes, `${payloadBytes} bytes written, ${aloneBytes} if alone`);
      },
      () => ({ frameBytesMax }),
    );
  });

  it("closes a peer's inbound connection when setPeers removes it", async () => {
    await withTcpCluster(
      2,
      () => ({}),
      async ({ nodes: [a, b], peers }) => {
        assert(a && b);
        a.transport.send("n1", { hello: 1 });
        await waitFor(() => b.received.length === 1, "the first message");
        b.transport.setPeers(peers.filter((peer) => peer.nodeId !== "n0"));
        assert(b.events.some((event) => event.type === "disconnected" && event.peer === "n0"));
        await waitFor(
          () => a.events.some((event) => event.type === "disconnected" && event.direction === "outbound"),
          "a to see its link closed",
        );
        a.transport.send("n1", { after: "removal" });
        await waitFor(() => b.transport.stats().authFailures >= 1, "b to refuse a on its next dial");
        assert.equal(b.received.length, 1);
      },
    );
  });
});

/** Node n1 again on `port` (a restart on the same address), recording what it receives. */
async function restartN1(cluster: TcpCluster, port: number, received: unknown[]): Promise<TcpTransport> {
  const restarted = new TcpTransport({
    self: { nodeId: "n1", name: nodeName(1) },
    clusterId: CLUSTER_ID,
    cookie: COOKIE,
    listen: { host: "127.0.0.1", port },
  });
  restarted.onMessage((_from, message) => received.push(message));
  await restarted.start();
  restarted.setPeers(cluster.peers);
  return restarted;
}

/** Two TCP nodes whose link from n0 to n1 is open (one message sent and received). */
async function withOpenLink(
  body: (a: TcpNode, b: TcpNode) => Promise<void>,
  overrides: Parameters<typeof withTcpCluster>[1] = () => ({}),
): Promise<void> {
  await withTcpCluster(2, overrides, async ({ nodes: [a, b] }) => {
    assert(a && b);
    a.transport.send("n1", { warm: true });
    await waitFor(() => b.received.length === 1, "the link to open");
    await body(a, b);
  });
}

/** a's link to b (n1) has carried one message; then b stops, so the link fails. */
async function deliverOnceThenStop(a: TcpNode, b: TcpNode): Promise<void> {
  assert.equal(a.transport.send("n1", { before: true }), true);
  await waitFor(() => b.received.length === 1, "the first message");
  await b.transport.stop();
}
