/**
 * Hostile bytes against a real TCP transport on 127.0.0.1: garbage and oversized or malformed
 * frames before and after authentication, forged frames in a live session, half-open sockets.
 * Each test asserts that the connection is closed, that nothing it sent reaches onMessage, and
 * that honest peers still get through afterwards.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { decodeBody, encodeBody, encodeFrame } from "../../src/adapters/transport/frame-codec.ts";
import { assertHonestDelivery, helloTo1, nodeName, RawPeer, waitFor, withTcpCluster } from "./tcp-fixture.ts";

const defaults = () => ({});

describe("TCP transport: attacks with frames", { timeout: 20_000 }, () => {
  it("an oversized length prefix closes the connection before anything is allocated", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const target = cluster.nodes[1];
      assert(target);
      const before = process.memoryUsage().arrayBuffers;
      const before1 = await RawPeer.connect(target.address.port);
      before1.write(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
      await before1.expectClosed(1000);
      // The same after authentication, where the limit is frameBytesMax (16 MiB).
      const session = await RawPeer.connect(target.address.port);
      await session.authenticate({ fromName: nodeName(0), toName: nodeName(1) });
      session.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
      await session.expectClosed(1000);
      assert(
        process.memoryUsage().arrayBuffers - before < 8 << 20,
        "no 4 GiB (or 16 MiB) buffer was allocated",
      );
      assert.equal(target.received.length, 0);
      await assertHonestDelivery(cluster);
    });
  });

  it("garbage before the handshake closes the connection silently", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const target = cluster.nodes[1];
      assert(target);
      const bodies = (value: unknown) => {
        const encoded = encodeBody(value);
        assert(encoded.ok);
        return encodeFrame(encoded.value);
      };
      const garbage: Record<string, Uint8Array> = {
        http: Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        random: randomBytes(64),
        notMsgpack: encodeFrame(new Uint8Array([0xc1, 0xc1, 0xc1])),
        truncatedMsgpack: encodeFrame(new Uint8Array([0x93, 0x01])),
        deeplyNested: encodeFrame(new Uint8Array(4000).fill(0x91)),
        wrongMagic: bodies({ ...helloTo1(), magic: "notconclave" }),
        notAHello: bodies([1, 2, 3]),
        truncatedFrame: new Uint8Array([0, 0, 0, 100, 1, 2, 3]),
      };
      for (const [name, bytes] of Object.entries(garbage)) {
        const attacker = await RawPeer.connect(target.address.port, "127.0.0.4");
        attacker.write(bytes);
        if (name === "truncatedFrame") attacker.socket.end();
        await attacker.expectClosed(1000).catch((error: unknown) => assert.fail(`${name}: ${String(error)}`));
        assert.equal(attacker.allReceived.length, 0, `${name}: no reply`);
      }
      assert.equal(target.received.length, 0);
      await assertHonestDelivery(cluster);
    });
  });

  it("a peer speaking another protocol version (here the one before) is told so, then closed", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const target = cluster.nodes[1];
      assert(target);
      const peer = await RawPeer.connect(target.address.port);
      peer.writeMessage({ ...helloTo1(), version: 1 });
      const reply = decodeBody((await peer.nextFrame()) ?? new Uint8Array());
      assert.match(
        (reply.ok && (reply.value as { error: string }).error) || "",
        /unsupported protocol version/,
      );
      await peer.expectClosed();
    });
  });

  it("malformed, truncated and deeply nested frames inside an authenticated session close it", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const target = cluster.nodes[1];
      assert(target);
      const payloads: Record<string, Uint8Array> = {
        notMsgpack: new Uint8Array([0xd4, 0x72, 0x00, 0x00]),
        truncated: new Uint8Array([0x92, 0x01]),
        trailing: new Uint8Array([0x01, 0x02]),
        deeplyNested: new Uint8Array(1_000_000).fill(0x91),
      };
      for (const [name, payload] of Object.entries(payloads)) {
        const session = await RawPeer.connect(target.address.port);
        const { sealer } = await session.authenticate({ fromName: nodeName(0), toName: nodeName(1) });
        const good = encodeBody({ ok: name });
        assert(good.ok);
        session.write(sealer.sealFrame(good.value));
        session.write(sealer.sealFrame(payload));
        session.write(sealer.sealFrame(good.value));
        await session.expectClosed().catch((error: unknown) => assert.fail(`${name}: ${String(error)}`));
        assert.deepEqual(target.received.at(-1)?.message, { ok: name }, `${name}: only the frame before it`);
      }
      assert.equal(target.received.length, Object.keys(payloads).length);
      await assertHonestDelivery(cluster);
    });
  });

  it("tampered, replayed, reordered and injected frames in a live session close it", async () => {
    await withTcpCluster(2, defaults, async (cluster) => {
      const target = cluster.nodes[1];
      assert(target);
      const message = (n: number) => {
        const encoded = encodeBody({ n });
        assert(encoded.ok);
        return encoded.value;
      };
      const attacks: Record<string, (seal: (payload: Uint8Array) => Uint8Array) => Uint8Array[]> = {
        tampered: (seal) => {
          const frame = seal(message(1));
          frame[frame.length - 1] = (frame[frame.length - 1] ?? 0) ^ 0x01;
          return [frame];
        },
        replayed: (seal) => {
          const frame = seal(message(1));
          return [frame, frame];
        },
        reordered: (seal) => {
          const first = seal(message(1));
          const second = seal(message(2));
          return [second, first];
        },
        injected: () => [encodeFrame(Buffer.concat([Buffer.alloc(24), Buffer.from(message(1))]))],
      };
      const expectedDelivered: Record<string, number> = {
        tampered: 0,
        replayed: 1,
        reordered: 0,
        injected: 0,
      };
      for (const [name, attack] of Object.entries(attacks)) {
        const session = await RawPeer.connect(target.address.port);
        const { sealer } = await session.authenticate({ fromName: nodeName(0), toName: nodeName(1) });
        const deliveredBefore: number = target.received.length;
        for (const frame of attack((payload) => sealer.sealFrame(payload))) session.write(frame);
        await session.expectClosed().catch((error: unknown) => assert.fail(`${name}: ${String(error)}`));
        assert.equal(target.received.length - deliveredBefore, expectedDelivered[name], name);
      }
      assert.equal(target.transport.stats().protocolErrors, 4);
      await assertHonestDelivery(cluster);
    });
  });

  it("many half-open connections: the cap closes the extra ones at once, the timeout the rest", async () => {
    const handshakeTimeoutMs = 1000;
    await withTcpCluster(
      2,
      () => ({ handshakeTimeoutMs, pendingHandshakesMax: 64 }),
      async (cluster) => {
        const target = cluster.nodes[1];
        assert(target);
        const sockets = await Promise.all(
          Array.from({ length: 200 }, () => RawPeer.connect(target.address.port, "127.0.0.3")),
        );
        try {
          await waitFor(
            () => sockets.filter((socket) => socket.isClosed).length >= 136,
            "the cap to close 136",
          );
          // Exactly the extra ones: the 64 admitted stay open until their handshake times out.
          assert.equal(sockets.filter((socket) => socket.isClosed).length, 136);
          assert.equal(target.transport.stats().connectionsRejected, 136);
          await waitFor(
            () => sockets.every((socket) => socket.isClosed),
            "the timeout to close the rest",
            3000,
          );
          assert.equal(target.transport.stats().handshakeTimeouts, 64);
        } finally {
          for (const socket of sockets) socket.destroy();
        }
        await assertHonestDelivery(cluster);
      },
    );
  });
});
