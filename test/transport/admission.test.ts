import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HandshakeAdmission } from "../../src/adapters/transport/admission.ts";

function admissionAt(clock: { nowMs: number }, pendingMax = 3) {
  return new HandshakeAdmission({
    pendingMax,
    limit: { burst: 2, refillPerSecond: 1, blockMs: 10_000 },
    now: () => clock.nowMs,
  });
}

describe("handshake admission", () => {
  it("caps concurrent pending handshakes and frees a slot when one settles", () => {
    const admission = admissionAt({ nowMs: 0 });
    for (let i = 0; i < 3; i++) assert.deepEqual(admission.admit(`10.0.0.${i}`), { ok: true });
    assert.deepEqual(admission.admit("10.0.0.9"), { ok: false, reason: "pending-cap" });
    admission.settle("10.0.0.0", "authenticated");
    assert.deepEqual(admission.admit("10.0.0.9"), { ok: true });
    assert.equal(admission.pending, 3);
  });

  it("blocks an address that exceeds its failure budget, only that address, for blockMs", () => {
    const clock = { nowMs: 0 };
    const admission = admissionAt(clock);
    const fail = (address: string) => {
      assert.equal(admission.admit(address).ok, true);
      admission.settle(address, "failed");
    };
    fail("10.0.0.1");
    fail("10.0.0.1");
    assert.equal(admission.isBlocked("10.0.0.1"), false, "a burst of 2 is allowed");
    fail("10.0.0.1");
    assert.deepEqual(admission.admit("10.0.0.1"), { ok: false, reason: "rate-limited" });
    assert.deepEqual(admission.admit("10.0.0.2"), { ok: true }, "another address is not affected");
    admission.settle("10.0.0.2", "authenticated");
    clock.nowMs = 10_001;
    assert.equal(admission.isBlocked("10.0.0.1"), false, "the block expires");
  });

  it("forgives failures at the refill rate, and does not count aborted or successful handshakes", () => {
    const clock = { nowMs: 0 };
    const admission = admissionAt(clock);
    for (let i = 0; i < 20; i++) {
      assert.equal(admission.admit("10.0.0.1").ok, true);
      admission.settle("10.0.0.1", i % 2 === 0 ? "aborted" : "authenticated");
    }
    for (let i = 0; i < 10; i++) {
      assert.equal(admission.admit("10.0.0.1").ok, true, `failure ${i} is within budget`);
      admission.settle("10.0.0.1", "failed");
      clock.nowMs += 1000; // one token back per second: a failure a second is sustainable
    }
    assert.equal(admission.isBlocked("10.0.0.1"), false);
  });
});
