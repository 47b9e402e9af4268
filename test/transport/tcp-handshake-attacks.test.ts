/**
 * Hostile peers against the cookie handshake of a real TCP transport on 127.0.0.1. Each test
 * asserts that the attack's connection is closed, that nothing it sent reaches onMessage, and
 * that honest peers still get through afterwards.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { decodeBody } from "../../src/adapters/transport/frame-codec.ts";
import { AUTH_FAILED, deriveCookieKey, handshakeMac } from "../../src/adapters/transport/handshake.ts";
import {
  assertHonestDelivery,
  COOKIE,
  FramedSocket,
  helloTo1,
  listenOnce,
  nodeName,
  RawPeer,
  redirect,
  WRONG_COOKIE,
  waitFor,
  withTcpCluster,
} from "./tcp-fixture.ts";

const defaults = () => ({});

describe("TCP transport: attacks on the handshake", { timeout: 20_000 }, () => {
  it("wrong cookie, dialing in: the prober gets 'auth failed' and is closed", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const target = cluster.nodes[1];
      assert(target);
      const attacker = await RawPeer.connect(target.address.port);
      const hello = helloTo1();
      attacker.writeMessage(hello);
      const challenge = decodeBody((await attacker.nextFrame()) ?? new Uint8Array());
      assert(challenge.ok);
      const { nonceB } = challenge.value as { nonceB: Uint8Array };
      attacker.writeMessage({
        macA: handshakeMac(deriveCookieKey(WRONG_COOKIE), "dialer", { ...hello, nonceB }),
      });
      attacker.writeMessage({ type: "vote", term: 99 });
      assert.deepEqual(decodeBody((await attacker.nextFrame()) ?? new Uint8Array()), {
        ok: true,
        value: { error: AUTH_FAILED },
      });
      await attacker.expectClosed();
      assert.equal(target.received.length, 0);
      assert.equal(target.transport.stats().authFailures, 1);
      await assertHonestDelivery(cluster);
    });
  });

  it("wrong cookie, both directions between real nodes: nothing is delivered, both report auth-failed", async () => {
    await withTcpCluster(
      2,
      (index) => (index === 1 ? { cookie: WRONG_COOKIE } : {}),
      async ({ nodes: [a, b] }) => {
        assert(a && b);
        a.transport.send("n1", { from: "a" });
        b.transport.send("n0", { from: "b" });
        await waitFor(
          () => a.events.some((event) => event.type === "auth-failed" && event.direction === "outbound"),
          "a to fail",
        );
        await waitFor(
          () => b.events.some((event) => event.type === "auth-failed" && event.direction === "outbound"),
          "b to fail",
        );
        assert.equal(a.received.length + b.received.length, 0);
        assert(a.events.every((event) => event.type !== "connected"));
      },
    );
  });

  it("a rogue acceptor without the cookie never gets our proof nor any message", async () => {
    const framesFromNode: unknown[] = [];
    const rogue = await listenOnce((socket) => {
      const raw = new FramedSocket(socket, (value) => {
        framesFromNode.push(value);
        const hello = value as ReturnType<typeof helloTo1>;
        const nonceB = randomBytes(32);
        const macB = handshakeMac(deriveCookieKey(WRONG_COOKIE), "acceptor", { ...hello, nonceB });
        raw.write({ nonceB: new Uint8Array(nonceB), macB });
      });
    });
    try {
      await withTcpCluster(2, defaults, async (cluster) => {
        const node0 = cluster.nodes[0];
        assert(node0);
        redirect(cluster, "n1", rogue.port);
        assert.equal(node0.transport.send("n1", { secret: "raft entry" }), true);
        await waitFor(
          () => node0.events.some((event) => event.type === "auth-failed"),
          "the dialer to refuse",
        );
        assert.match(
          node0.events.find((event) => event.type === "auth-failed")?.reason ?? "",
          /wrong challenge MAC/,
        );
        assert.equal(framesFromNode.length >= 1, true);
        assert(
          framesFromNode.every((frame) => (frame as { magic?: string }).magic === "conclave"),
          "only hellos",
        );
      });
    } finally {
      await rogue.close();
    }
  });

  it("a replayed handshake (recorded bytes of a real session) is refused and delivers nothing", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const [node0, node1] = cluster.nodes;
      assert(node0 && node1);
      // A recording proxy between node 0 and node 1.
      const recorded: Buffer[] = [];
      const proxy = await listenOnce((client) => {
        const upstream = FramedSocket.pipe(client, node1.address.port, (chunk) => recorded.push(chunk));
        client.on("close", () => upstream.destroy());
      });
      try {
        redirect(cluster, "n1", proxy.port);
        assert.equal(node0.transport.send("n1", { recorded: 1 }), true);
        await waitFor(() => node1.received.length === 1, "the recorded message");
        const replayer = await RawPeer.connect(node1.address.port);
        replayer.write(Buffer.concat(recorded));
        await replayer.expectClosed();
        assert.equal(node1.received.length, 1, "the replayed message was not delivered again");
        assert.equal(node1.transport.stats().authFailures, 1);
      } finally {
        await proxy.close();
      }
      redirect(cluster, "n1", node1.address.port);
      await assertHonestDelivery(cluster);
    });
  });

  it("reflection: the node's own challenge MAC, or its own hello, sent back to it, is refused", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const target = cluster.nodes[1];
      assert(target);
      const echo = await RawPeer.connect(target.address.port);
      echo.writeMessage(helloTo1());
      const challenge = decodeBody((await echo.nextFrame()) ?? new Uint8Array());
      assert(challenge.ok);
      echo.writeMessage({ macA: (challenge.value as { macB: Uint8Array }).macB });
      await echo.expectClosed();

      // Node 1 dials "node 0" (really us) and we send its own hello back to it.
      let ownHello: unknown;
      const trap = await listenOnce((socket) => {
        new FramedSocket(socket, (value) => {
          ownHello ??= value;
        });
      });
      try {
        target.transport.setPeers(
          cluster.peers.map((peer) => (peer.nodeId === "n0" ? { ...peer, port: trap.port } : peer)),
        );
        target.transport.send("n0", { bait: true });
        await waitFor(() => ownHello !== undefined, "node 1's hello");
        const mirror = await RawPeer.connect(target.address.port);
        mirror.writeMessage(ownHello);
        const reply = await mirror.nextFrame();
        assert(reply !== null, "the node answers a reflected hello like any other");
        mirror.writeMessage({ macA: (decodeBody(reply) as { value: { macB: Uint8Array } }).value.macB });
        await mirror.expectClosed();
      } finally {
        await trap.close();
      }
      assert.equal(target.received.length, 0);
      assert.equal(target.transport.stats().authFailures, 2);
      target.transport.setPeers(cluster.peers);
      await assertHonestDelivery(cluster);
    });
  });

  it("an unknown node name and a wrong MAC get byte-identical answers; only the local log differs", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const target = cluster.nodes[1];
      assert(target);
      const probe = async (fromName: string, cookie: string): Promise<Uint8Array[]> => {
        const peer = await RawPeer.connect(target.address.port);
        const hello = helloTo1(fromName);
        peer.writeMessage(hello);
        const challengeFrame = await peer.nextFrame();
        assert(challengeFrame !== null);
        const challenge = decodeBody(challengeFrame);
        assert(challenge.ok);
        const { nonceB } = challenge.value as { nonceB: Uint8Array };
        peer.writeMessage({ macA: handshakeMac(deriveCookieKey(cookie), "dialer", { ...hello, nonceB }) });
        const rejection = await peer.nextFrame();
        await peer.expectClosed();
        assert(rejection !== null);
        return [challengeFrame, rejection];
      };
      const [unknownChallenge, unknownRejection] = await probe("mallory@127.0.0.1", COOKIE);
      const [wrongMacChallenge, wrongMacRejection] = await probe(nodeName(0), WRONG_COOKIE);
      assert.equal(unknownChallenge?.length, wrongMacChallenge?.length, "challenges of the same shape");
      assert.deepEqual(unknownRejection, wrongMacRejection, "identical rejection bytes");
      const reasons = target.events
        .filter((event) => event.type === "auth-failed")
        .map((event) => event.reason);
      assert.match(reasons[0] ?? "", /unknown node name "mallory@127.0.0.1"/);
      assert.match(reasons[1] ?? "", /wrong proof: the dialer does not hold our cookie/);
      assert.equal(target.received.length, 0);
    });
  });

  it("a real node that holds the cookie but is not in the peer set is refused at handshake time", async () => {
    await withTcpCluster(3, defaults, async (cluster) => {
      const [, node1, outsider] = cluster.nodes;
      assert(node1 && outsider);
      node1.transport.setPeers(cluster.peers.filter((peer) => peer.nodeId !== "n2"));
      assert.equal(outsider.transport.send("n1", { from: "outsider" }), true);
      await waitFor(
        () => outsider.events.some((event) => event.type === "auth-failed"),
        "the outsider to be refused",
      );
      assert.match(
        outsider.events.find((event) => event.type === "auth-failed")?.reason ?? "",
        /auth failed/,
      );
      assert.match(
        node1.events.find((event) => event.type === "auth-failed")?.reason ?? "",
        /unknown node name "n2@/,
      );
      assert.equal(node1.received.length, 0);
      await assertHonestDelivery(cluster);
    });
  });

  it("failed handshakes are rate-limited per source address; other addresses are unaffected", async () => {
    const failedHandshakeLimit = { burst: 3, refillPerSecond: 0, blockMs: 60_000 };
    await withTcpCluster(
      2,
      () => ({ failedHandshakeLimit }),
      async (cluster) => {
        const target = cluster.nodes[1];
        assert(target);
        const failOnce = async (): Promise<RawPeer> => {
          const peer = await RawPeer.connect(target.address.port, "127.0.0.2");
          peer.writeMessage(helloTo1("mallory@127.0.0.1"));
          const challenge = await peer.nextFrame();
          if (challenge !== null) peer.writeMessage({ macA: new Uint8Array(32) });
          await peer.expectClosed();
          return peer;
        };
        for (let i = 0; i < 4; i++) await failOnce(); // a burst of 3, then the 4th blocks the address
        const blocked = await failOnce();
        assert.equal(blocked.allReceived.length, 0, "closed before any challenge");
        assert.equal(target.transport.stats().connectionsRejected, 1);
        assert.equal(target.transport.stats().authFailures, 4);
        await assertHonestDelivery(cluster); // from 127.0.0.1
      },
    );
  });
});
