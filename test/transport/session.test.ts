import assert from "node:assert/strict";
import { createSecretKey, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { FRAME_HEADER_BYTES } from "../../src/adapters/transport/frame-codec.ts";
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
    for (let i = 0; i < 100; i++) {
      const payload = randomBytes(i);
      const opened = opener.open(sealBody(sealer, payload));
      assert(opened.ok);
      assert.deepEqual(Buffer.from(opened.payload), payload);
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
      // What the transport does per frame: seal a header (the payload is written as it is)...
      const headerSealer = new SessionSealer(key, "dialer-to-acceptor");
      const sealStart = performance.now();
      for (let i = 0; i < iterations; i++) headerSealer.sealHeader(payload);
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
