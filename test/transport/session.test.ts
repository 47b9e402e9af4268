import assert from "node:assert/strict";
import { createHmac, createSecretKey, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { FRAME_HEADER_BYTES } from "../../src/adapters/transport/frame-codec.ts";
import { FrameMac } from "../../src/adapters/transport/frame-mac.ts";
import { SESSION_HEADER_BYTES, SessionOpener, SessionSealer } from "../../src/adapters/transport/session.ts";

const key = createSecretKey(randomBytes(32));

/** A sealed frame's body (what the opener sees once the decoder removed the length prefix). */
function sealBody(sealer: SessionSealer, payload: Uint8Array): Uint8Array {
  return sealer.sealFrame(payload).subarray(FRAME_HEADER_BYTES);
}

function pair() {
  return {
    sealer: new SessionSealer(key, "dialer-to-acceptor"),
    opener: new SessionOpener(key, "dialer-to-acceptor"),
  };
}

describe("session frames", () => {
  it("opens the frames of its sealer, in order, returning the payloads", () => {
    const { sealer, opener } = pair();
    for (let i = 1; i <= 100; i++) {
      const payload = randomBytes(i);
      const opened = opener.open(sealBody(sealer, payload));
      assert(opened.ok);
      assert.deepEqual(
        opened.payloads.map((one) => Buffer.from(one)),
        [payload],
      );
    }
  });

  it("one frame carries several messages under one tag and opens into them in order", () => {
    const { sealer, opener } = pair();
    for (const sizes of [[1, 2, 3], [100, 16 * 1024, 7], [40_000], [1, 40_000], [16 * 1024 + 1]]) {
      const payloads = sizes.map((size) => randomBytes(size));
      const chunks = sealer.seal(payloads);
      const frame = Buffer.concat(chunks);
      assert.equal(frame.readUInt32BE(0), frame.length - FRAME_HEADER_BYTES, `${sizes}: length prefix`);
      const opened = opener.open(frame.subarray(FRAME_HEADER_BYTES));
      assert(opened.ok, `${sizes}`);
      assert.deepEqual(
        opened.payloads.map((one) => Buffer.from(one)),
        payloads,
        `${sizes}`,
      );
    }
  });

  it("the wire format: sequence, then HMAC-SHA256(key, direction ‖ sequence ‖ parts)[0..16], then length-prefixed parts", () => {
    const rawKey = randomBytes(32);
    const sealer = new SessionSealer(createSecretKey(rawKey), "acceptor-to-dialer");
    sealer.seal([Buffer.from("frame 0")]);
    let sequence = 1n;
    for (const payloads of [[Buffer.from("a"), Buffer.from("bc")], [randomBytes(20_000)]]) {
      const body = Buffer.concat(sealer.seal(payloads)).subarray(FRAME_HEADER_BYTES);
      const parts = Buffer.concat(
        payloads.flatMap((payload) => [
          Buffer.from([0, 0, payload.length >> 8, payload.length & 0xff]),
          payload,
        ]),
      );
      assert.equal(body.readBigUInt64BE(0), sequence++);
      const expectedTag = createHmac("sha256", rawKey)
        .update(Buffer.from([0x02]))
        .update(body.subarray(0, 8))
        .update(parts)
        .digest()
        .subarray(0, 16);
      assert.deepEqual(body.subarray(8, 24), expectedTag);
      assert.deepEqual(body.subarray(24), parts);
    }
  });

  it("an authentic frame whose message lengths do not add up is refused, naming where", () => {
    const rawKey = randomBytes(32);
    const mac = new FrameMac(createSecretKey(rawKey));
    const bodyOf = (sequence: number, parts: Buffer) => {
      const sequenceBytes = Buffer.alloc(8);
      sequenceBytes.writeUInt32BE(sequence, 4);
      const tag = Buffer.from(mac.tag(0x01, sequenceBytes, parts), "latin1").subarray(0, 16);
      return Buffer.concat([sequenceBytes, tag, parts]);
    };
    const cases: [string, Buffer, RegExp][] = [
      ["no message", Buffer.alloc(0), /without a message/],
      ["a length longer than the frame", Buffer.from([0, 0, 0, 9, 1, 2]), /length 9 at byte 0 does not fit/],
      ["an empty message", Buffer.from([0, 0, 0, 0]), /length 0 at byte 0/],
      ["a truncated second length", Buffer.from([0, 0, 0, 1, 7, 0, 0]), /truncated message length at byte 5/],
    ];
    for (const [name, parts, reason] of cases) {
      const opener = new SessionOpener(createSecretKey(rawKey), "dialer-to-acceptor");
      const opened = opener.open(bodyOf(0, parts));
      assert.equal(opened.ok, false, name);
      assert.match(!opened.ok ? opened.reason : "", reason, name);
    }
  });

  it("detects a flipped bit anywhere in the frame", () => {
    const { sealer } = pair();
    const body = sealBody(sealer, randomBytes(40));
    for (let bit = 0; bit < body.length * 8; bit++) {
      const tampered = Uint8Array.from(body);
      tampered[bit >> 3] = (tampered[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      assert.equal(new SessionOpener(key, "dialer-to-acceptor").open(tampered).ok, false, `bit ${bit}`);
    }
  });

  it("refuses a replayed frame", () => {
    const { sealer, opener } = pair();
    const body = sealBody(sealer, new Uint8Array([1]));
    assert.equal(opener.open(body).ok, true);
    const replayed = opener.open(body);
    assert.equal(replayed.ok, false);
    assert.match(!replayed.ok ? replayed.reason : "", /replayed frame: sequence 0, expected 1/);
  });

  it("refuses reordered and skipped frames", () => {
    const { sealer, opener } = pair();
    sealBody(sealer, new Uint8Array([0]));
    const second = sealBody(sealer, new Uint8Array([1]));
    const reordered = opener.open(second);
    assert.match(!reordered.ok ? reordered.reason : "", /reordered or skipped frame: sequence 1, expected 0/);
  });

  it("refuses an injected frame, one from another session, and one sent the other way", () => {
    const { sealer, opener } = pair();
    const injected = new Uint8Array(SESSION_HEADER_BYTES + 3);
    assert.equal(opener.open(injected).ok, false);
    const otherSession = new SessionSealer(createSecretKey(randomBytes(32)), "dialer-to-acceptor");
    assert.equal(opener.open(sealBody(otherSession, new Uint8Array([1]))).ok, false);
    const reflected = new SessionSealer(key, "acceptor-to-dialer");
    assert.equal(opener.open(sealBody(reflected, new Uint8Array([1]))).ok, false);
    assert.equal(opener.open(new Uint8Array(5)).ok, false);
    // The honest frame still opens after those were refused (the opener does not advance on failure).
    assert.equal(opener.open(sealBody(sealer, new Uint8Array([1]))).ok, true);
  });

  it("measures the cost of sealing and opening one frame (printed, not asserted)", () => {
    for (const size of [100, 64 * 1024]) {
      const { sealer, opener } = pair();
      const payload = randomBytes(size);
      const iterations = size === 100 ? 50_000 : 2_000;
      const bodies: Uint8Array[] = [];
      for (let i = 0; i < iterations; i++) bodies.push(sealBody(sealer, payload));
      // What the transport does per frame of one message: seal it (copied once when small)...
      const frameSealer = new SessionSealer(key, "dialer-to-acceptor");
      const sealStart = performance.now();
      for (let i = 0; i < iterations; i++) frameSealer.seal([payload]);
      const sealUs = ((performance.now() - sealStart) * 1000) / iterations;
      // ...and open the frame on the other side.
      const openStart = performance.now();
      for (const body of bodies) assert.equal(opener.open(body).ok, true);
      const openUs = ((performance.now() - openStart) * 1000) / iterations;
      console.log(
        `session MAC, ${size}-byte payload: seal ${sealUs.toFixed(2)} µs/frame, open ${openUs.toFixed(2)} µs/frame`,
      );
    }
  });
});
