/** The cookie handshake as pure functions, without sockets. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  answerChallenge,
  answerHello,
  createHello,
  deriveCookieKey,
  deriveSessionKey,
  type Hello,
  handshakeMac,
  PROTOCOL_VERSION,
  parseHello,
  verifyProof,
} from "../../src/adapters/transport/handshake.ts";
import { isConclaveError } from "../../src/lib/errors.ts";

const cookieKey = deriveCookieKey(randomBytes(32).toString("base64url"));
const otherKey = deriveCookieKey(randomBytes(32).toString("base64url"));
const acceptor = { clusterId: "c1", name: "b@host" };
const members = new Set(["a@host"]);
const refuseNonMembers = (name: string) => (members.has(name) ? undefined : `unknown node name "${name}"`);
const helloFromA = (): Hello => createHello({ clusterId: "c1", fromName: "a@host", toName: "b@host" });

function exportKey(key: { export(): Buffer }): string {
  return key.export().toString("hex");
}

describe("cookie handshake", () => {
  it("authenticates both sides and gives both the same fresh session key", () => {
    const hello = helloFromA();
    const { challenge, pending } = answerHello(cookieKey, acceptor, hello, refuseNonMembers);
    const dialer = answerChallenge(cookieKey, hello, challenge);
    assert(dialer.ok);
    const verified = verifyProof(cookieKey, pending, dialer.proof);
    assert(verified.ok);
    assert.equal(verified.peerName, "a@host");
    assert.equal(exportKey(verified.sessionKey), exportKey(dialer.sessionKey));
    // A second handshake between the same nodes has another key (fresh nonces).
    const again = helloFromA();
    const second = answerHello(cookieKey, acceptor, again, refuseNonMembers);
    const dialerAgain = answerChallenge(cookieKey, again, second.challenge);
    assert(dialerAgain.ok);
    assert.notEqual(exportKey(dialerAgain.sessionKey), exportKey(dialer.sessionKey));
  });

  it("never puts the cookie on the wire", () => {
    const cookie = randomBytes(32).toString("base64url");
    const key = deriveCookieKey(cookie);
    const hello = helloFromA();
    const { challenge } = answerHello(key, acceptor, hello, refuseNonMembers);
    const dialer = answerChallenge(key, hello, challenge);
    assert(dialer.ok);
    const wire = Buffer.from(
      JSON.stringify([hello, challenge, dialer.proof], (_k, v) =>
        v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v,
      ),
    );
    assert(!wire.includes(cookie));
  });

  it("the dialer refuses an acceptor with another cookie and sends no proof", () => {
    const hello = helloFromA();
    const { challenge } = answerHello(otherKey, acceptor, hello, refuseNonMembers);
    const dialer = answerChallenge(cookieKey, hello, challenge);
    assert.equal(dialer.ok, false);
    assert.equal(!dialer.ok && dialer.kind, "auth");
  });

  it("the acceptor refuses a dialer with another cookie", () => {
    const hello = helloFromA();
    const { challenge, pending } = answerHello(cookieKey, acceptor, hello, refuseNonMembers);
    const forgedMac = handshakeMac(otherKey, "dialer", { ...hello, nonceB: challenge.nonceB });
    const verified = verifyProof(cookieKey, pending, { macA: forgedMac });
    assert.deepEqual(verified, {
      ok: false,
      kind: "auth",
      reason: "wrong proof: the dialer does not hold our cookie",
    });
  });

  it("a replayed proof fails: the acceptor's nonce is new each time", () => {
    const hello = helloFromA();
    const first = answerHello(cookieKey, acceptor, hello, refuseNonMembers);
    const dialer = answerChallenge(cookieKey, hello, first.challenge);
    assert(dialer.ok);
    // The attacker replays the same hello and the recorded proof on a new connection.
    const second = answerHello(cookieKey, acceptor, hello, refuseNonMembers);
    assert.equal(verifyProof(cookieKey, second.pending, dialer.proof).ok, false);
  });

  it("reflection fails: the acceptor's own MAC is not a valid proof", () => {
    const hello = helloFromA();
    const { challenge, pending } = answerHello(cookieKey, acceptor, hello, refuseNonMembers);
    const verified = verifyProof(cookieKey, pending, { macA: challenge.macB });
    assert.equal(verified.ok, false);
  });

  it("refuses an unknown name, a wrong cluster or a wrong destination only after the proof, like a bad MAC", () => {
    const cases: Array<[Hello, RegExp]> = [
      [createHello({ clusterId: "c1", fromName: "mallory@host", toName: "b@host" }), /unknown node name/],
      [createHello({ clusterId: "other", fromName: "a@host", toName: "b@host" }), /wrong cluster id/],
      [createHello({ clusterId: "c1", fromName: "a@host", toName: "c@host" }), /addressed to "c@host"/],
    ];
    for (const [hello, reason] of cases) {
      const { challenge, pending } = answerHello(cookieKey, acceptor, hello, refuseNonMembers);
      // The challenge is a real one: an honest dialer proceeds to its proof...
      const dialer = answerChallenge(cookieKey, hello, challenge);
      assert(dialer.ok);
      // ...and is refused then, with the same kind of failure as a wrong MAC.
      const verified = verifyProof(cookieKey, pending, dialer.proof);
      assert.equal(verified.ok, false);
      assert.equal(!verified.ok && verified.kind, "auth");
      assert.match(!verified.ok ? verified.reason : "", reason);
    }
  });

  it("binds every transcript field: changing one byte of any field changes the MACs and the session key", () => {
    const transcript = {
      clusterId: "c1",
      fromName: "a|b",
      toName: "c",
      nonceA: randomBytes(32),
      nonceB: randomBytes(32),
    };
    const shifted = { ...transcript, fromName: "a", toName: "b|c" };
    assert.notDeepEqual(
      handshakeMac(cookieKey, "dialer", transcript),
      handshakeMac(cookieKey, "dialer", shifted),
    );
    assert.notDeepEqual(
      handshakeMac(cookieKey, "dialer", transcript),
      handshakeMac(cookieKey, "acceptor", transcript),
    );
    assert.notEqual(
      exportKey(deriveSessionKey(cookieKey, transcript)),
      exportKey(deriveSessionKey(cookieKey, shifted)),
    );
  });

  it("parses only a well-formed hello of our protocol", () => {
    const good = helloFromA();
    assert.equal(parseHello(good).ok, true);
    const bad: Array<[unknown, string]> = [
      [null, "protocol"],
      ["GET / HTTP/1.1", "protocol"],
      [{ ...good, magic: "nope" }, "protocol"],
      [{ ...good, version: PROTOCOL_VERSION + 1 }, "version"],
      [{ ...good, version: 1 }, "version"],
      [{ ...good, nonceA: new Uint8Array(31) }, "protocol"],
      [{ ...good, fromName: "x".repeat(256) }, "protocol"],
      [{ ...good, toName: 42 }, "protocol"],
      [new Map(Object.entries(good)), "protocol"],
    ];
    for (const [value, kind] of bad) {
      const parsed = parseHello(value);
      assert.equal(!parsed.ok && parsed.kind, kind, JSON.stringify(String(value)));
    }
  });

  it("refuses a malformed challenge or proof without throwing", () => {
    const hello = helloFromA();
    const { pending } = answerHello(cookieKey, acceptor, hello, refuseNonMembers);
    for (const value of [undefined, {}, { macA: new Uint8Array(3) }, { macA: "x".repeat(32) }]) {
      assert.equal(verifyProof(cookieKey, pending, value).ok, false);
    }
    for (const value of [undefined, {}, { nonceB: new Uint8Array(32) }, { nonceB: 1, macB: 2 }]) {
      assert.equal(answerChallenge(cookieKey, hello, value).ok, false);
    }
  });

  it("refuses a weak cookie with CONCLAVE_COOKIE_WEAK", () => {
    assert.throws(
      () => deriveCookieKey("secret"),
      (error) => isConclaveError(error, "CONCLAVE_COOKIE_WEAK"),
    );
  });
});
