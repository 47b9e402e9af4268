/**
 * The compliance suite of the Transport port: every adapter (TCP, TLS, in-memory) runs it.
 * It checks the contract in src/ports/transport.ts, nothing adapter-specific.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import type { PeerAddress, Transport } from "../../src/ports/transport.ts";

/** Started transports that know each other as peers (`peers[i]` is `transports[i]`). */
export interface TransportHarness {
  readonly transports: Transport[];
  readonly peers: PeerAddress[];
  stop(): Promise<void>;
}

interface Inbox {
  readonly messages: Array<{ from: string; message: unknown }>;
}

function listen(transport: Transport): Inbox {
  const inbox: Inbox = { messages: [] };
  transport.onMessage((from, message) => inbox.messages.push({ from, message }));
  return inbox;
}

async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** A round trip through every transport: a message that arrives proves the link works. */
async function settle(harness: TransportHarness, from: number, to: number, inbox: Inbox): Promise<void> {
  const marker = `settle-${Math.random()}`;
  assert.equal(harness.transports[from]?.send(harness.peers[to]?.nodeId ?? "", { marker }), true);
  await until(
    () => inbox.messages.some((entry) => (entry.message as { marker?: string }).marker === marker),
    "settle",
  );
}

export function transportComplianceSuite(
  name: string,
  create: (count: number) => Promise<TransportHarness>,
): void {
  const withHarness = async (
    count: number,
    body: (harness: TransportHarness) => Promise<void>,
  ): Promise<void> => {
    const harness = await create(count);
    try {
      await body(harness);
    } finally {
      await harness.stop();
    }
  };

  describe(`Transport compliance: ${name}`, () => {
    it("delivers a message with the sender's nodeId", async () => {
      await withHarness(2, async ({ transports: [a, b], peers }) => {
        assert(a && b);
        const inbox = listen(b);
        assert.equal(a.send(peers[1]?.nodeId ?? "", { type: "heartbeat", term: 3 }), true);
        await until(() => inbox.messages.length === 1, "the message");
        assert.deepEqual(inbox.messages[0], {
          from: peers[0]?.nodeId,
          message: { type: "heartbeat", term: 3 },
        });
      });
    });

    it("keeps per-peer FIFO order across many messages to several peers", async () => {
      await withHarness(3, async ({ transports: [a, b, c], peers }) => {
        assert(a && b && c);
        const inboxB = listen(b);
        const inboxC = listen(c);
        const count = 2000;
        for (let i = 0; i < count; i++) {
          assert.equal(a.send(peers[1]?.nodeId ?? "", { i }), true);
          assert.equal(a.send(peers[2]?.nodeId ?? "", { i }), true);
        }
        await until(
          () => inboxB.messages.length === count && inboxC.messages.length === count,
          "all messages",
        );
        for (const inbox of [inboxB, inboxC]) {
          assert.deepEqual(
            inbox.messages.map((entry) => (entry.message as { i: number }).i),
            Array.from({ length: count }, (_, i) => i),
          );
        }
      });
    });

    it("round-trips Uint8Array fields as Uint8Array, in a Raft-shaped message", async () => {
      await withHarness(2, async ({ transports: [a, b], peers }) => {
        assert(a && b);
        const inbox = listen(b);
        const message = {
          type: "append",
          from: peers[0]?.nodeId,
          to: peers[1]?.nodeId,
          term: 2,
          prevIndex: 0,
          prevTerm: 0,
          commit: 0,
          entries: [
            { kind: "command", index: 1, term: 2, data: new Uint8Array([0, 1, 2, 255]) },
            { kind: "command", index: 2, term: 2, data: new Uint8Array(0) },
          ],
          snapshot: new Uint8Array(70_000).fill(7),
        };
        assert.equal(a.send(peers[1]?.nodeId ?? "", message), true);
        await until(() => inbox.messages.length === 1, "the message");
        const received = inbox.messages[0]?.message as typeof message;
        assert.deepEqual(received, message);
        for (const entry of received.entries) assert.equal(entry.data.constructor, Uint8Array);
        assert.equal(received.snapshot.constructor, Uint8Array);
      });
    });

    it("delivers a copy: changing the object after send does not change what arrives", async () => {
      await withHarness(2, async ({ transports: [a, b], peers }) => {
        assert(a && b);
        const inbox = listen(b);
        const data = new Uint8Array([1, 2, 3]);
        const message = { data, note: "before" };
        assert.equal(a.send(peers[1]?.nodeId ?? "", message), true);
        message.note = "after";
        data[0] = 99;
        await until(() => inbox.messages.length === 1, "the message");
        assert.deepEqual(inbox.messages[0]?.message, { data: new Uint8Array([1, 2, 3]), note: "before" });
      });
    });

    it("returns false, without throwing, for an unknown peer, itself or an unencodable message", async () => {
      await withHarness(2, async ({ transports: [a], peers }) => {
        assert(a);
        const dropped = a.stats().messagesDropped;
        assert.equal(a.send("nobody", { hello: 1 }), false);
        assert.equal(a.send(peers[0]?.nodeId ?? "", { hello: 1 }), false);
        assert.equal(a.send(peers[1]?.nodeId ?? "", { bad: Symbol("not encodable") }), false);
        assert.equal(a.stats().messagesDropped, dropped + 3);
      });
    });

    it("does not deliver from a node outside the receiver's peer set", async () => {
      await withHarness(3, async ({ transports: [a, b, c], peers }) => {
        assert(a && b && c);
        const inbox = listen(b);
        // b forgets a; a still lists b.
        b.setPeers(peers.filter((peer) => peer.nodeId !== peers[0]?.nodeId));
        assert.equal(a.send(peers[1]?.nodeId ?? "", { from: "a, not a member of b's set" }), true);
        await until(() => b.stats().authFailures >= 1, "b to refuse a");
        // c is still a member: its message arrives, and a's never does.
        await settle({ transports: [a, b, c], peers, stop: async () => {} }, 2, 1, inbox);
        assert.deepEqual(
          inbox.messages.map((entry) => entry.from),
          [peers[2]?.nodeId],
        );
      });
    });

    it("stops sending to a peer removed by setPeers", async () => {
      await withHarness(2, async ({ transports: [a], peers }) => {
        assert(a);
        a.setPeers([peers[0] as PeerAddress]);
        assert.equal(a.send(peers[1]?.nodeId ?? "", { late: true }), false);
      });
    });

    it("stop() stops delivery, refuses sends, clears localAddress and is idempotent", async () => {
      await withHarness(3, async ({ transports: [a, b, c], peers }) => {
        assert(a && b && c);
        const inboxB = listen(b);
        const inboxC = listen(c);
        await settle({ transports: [a, b, c], peers, stop: async () => {} }, 0, 1, inboxB);
        await b.stop();
        await b.stop();
        assert.equal(b.localAddress, null);
        const deliveredToB = inboxB.messages.length;
        a.send(peers[1]?.nodeId ?? "", { afterStop: true });
        assert.equal(b.send(peers[2]?.nodeId ?? "", { fromStopped: true }), false);
        // a still reaches c, so a's message to b had every chance to arrive, and did not.
        await settle({ transports: [a, b, c], peers, stop: async () => {} }, 0, 2, inboxC);
        assert.equal(inboxB.messages.length, deliveredToB);
        assert(!inboxC.messages.some((entry) => (entry.message as { fromStopped?: boolean }).fromStopped));
      });
    });
  });
}
