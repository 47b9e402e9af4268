/**
 * The session message codec (src/adapters/transport/message-codec.ts): the hot messages go in
 * the fixed layout and decode to exactly what msgpack would have given; anything else goes as
 * msgpack; hostile fixed-layout bodies are refused with a reason, never thrown on.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decodeBody, encodeBody } from "../../src/adapters/transport/frame-codec.ts";
import {
  decodeMessage,
  encodeMessage,
  FIXED_LAYOUT_MARKER,
} from "../../src/adapters/transport/message-codec.ts";

const count = fc.maxSafeNat();
const nodeId = fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 60 }));
const bytes = fc.uint8Array({ maxLength: 300 });
const envelope = { from: nodeId, to: nodeId, term: count };

const hotMessages = fc.oneof(
  fc.record({
    type: fc.constant("append"),
    ...envelope,
    prevIndex: count,
    prevTerm: count,
    entries: fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant("command"), index: count, term: count, data: bytes }),
        fc.record({ kind: fc.constant("noop"), index: count, term: count }),
      ),
      { maxLength: 8 },
    ),
    commit: count,
    commitOnly: fc.boolean(),
  }),
  fc.record({
    type: fc.constant("append-response"),
    ...envelope,
    success: fc.boolean(),
    matchIndex: count,
    rejectedIndex: count,
    conflictIndex: count,
    conflictTerm: count,
    lastIndex: count,
  }),
  fc.record({ type: fc.constant("heartbeat"), ...envelope, commit: count, round: count }),
  fc.record({ type: fc.constant("heartbeat-response"), ...envelope, round: count, lastIndex: count }),
  fc.record(
    {
      type: fc.constant("forward-propose"),
      id: count,
      from: nodeId,
      to: nodeId,
      data: bytes,
      timeoutMs: count,
      stampAtPrimary: fc.constant(true as const),
      trace: count,
    },
    { requiredKeys: ["type", "id", "from", "to", "data", "timeoutMs"] },
  ),
  fc.record(
    {
      type: fc.constant("forward-result"),
      id: count,
      from: nodeId,
      to: nodeId,
      outcome: fc.record({
        ok: fc.constant(true as const),
        index: count,
        term: count,
        result: fc.oneof(
          fc.constant(null),
          fc.record({ ok: fc.boolean(), revision: count, created: fc.boolean() }),
          fc.array(fc.record({ n: fc.integer(), s: fc.string() }), { maxLength: 3 }),
        ),
      }),
      trace: fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 40 }), count), { maxLength: 16 }),
    },
    { requiredKeys: ["type", "id", "from", "to", "outcome"] },
  ),
);

/** What msgpack alone gives for `message` (the reference the fixed layout must match). */
function viaMsgpack(message: unknown): unknown {
  const encoded = encodeBody(message);
  assert(encoded.ok);
  const decoded = decodeBody(encoded.value);
  assert(decoded.ok);
  return decoded.value;
}

function roundTrip(message: unknown): { fixed: boolean; value: unknown } {
  const encoded = encodeMessage(message);
  assert(encoded.ok);
  const decoded = decodeMessage(encoded.value);
  assert(decoded.ok, !decoded.ok ? decoded.error.message : "");
  return { fixed: encoded.value[0] === FIXED_LAYOUT_MARKER, value: decoded.value };
}

describe("session message codec", () => {
  it("Raft appends, answers, heartbeats and forwards go in the fixed layout and decode as msgpack would give them", () => {
    fc.assert(
      fc.property(hotMessages, (message) => {
        const { fixed, value } = roundTrip(message);
        assert.equal(fixed, true);
        assert.deepEqual(value, viaMsgpack(message));
      }),
      { numRuns: 2000 },
    );
  });

  it("anything else goes as msgpack, so no field is dropped: extra fields, config entries, failures, other types", () => {
    const append = {
      type: "append",
      from: "a",
      to: "b",
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      entries: [],
      commit: 0,
      commitOnly: false,
    };
    const others: unknown[] = [
      { ...append, later: "a field added later" },
      {
        ...append,
        entries: [{ kind: "config", index: 1, term: 1, membership: { voters: ["a"], learners: [] } }],
      },
      { ...append, entries: [{ kind: "command", index: 1, term: 1, data: new Uint8Array(1), extra: 1 }] },
      { ...append, term: 1.5 },
      { ...append, term: -1 },
      { ...append, from: "x".repeat(100) },
      {
        type: "forward-result",
        id: 1,
        from: "a",
        to: "b",
        outcome: { ok: false, code: "CONCLAVE_NOT_PRIMARY", message: "no", leader: null },
      },
      {
        type: "forward-propose",
        id: 1,
        from: "a",
        to: "b",
        data: new Uint8Array(1),
        timeoutMs: 5,
        stampAtPrimary: false,
      },
      {
        type: "vote",
        from: "a",
        to: "b",
        term: 2,
        lastLogIndex: 1,
        lastLogTerm: 1,
        preVote: true,
        transfer: false,
      },
      { hello: "not Raft at all" },
      [1, 2, 3],
    ];
    for (const message of others) {
      const { fixed, value } = roundTrip(message);
      assert.equal(
        fixed,
        false,
        JSON.stringify(message, (_, v) => (v instanceof Uint8Array ? [...v] : v)),
      );
      assert.deepEqual(value, viaMsgpack(message));
    }
  });

  it("a truncated, padded or corrupted fixed-layout body is refused with a reason, never thrown on", () => {
    const encoded = encodeMessage({
      type: "append",
      from: "n1",
      to: "n2",
      term: 3,
      prevIndex: 7,
      prevTerm: 2,
      entries: [{ kind: "command", index: 8, term: 3, data: new Uint8Array([1, 2, 3]) }],
      commit: 6,
      commitOnly: false,
    });
    assert(encoded.ok && encoded.value[0] === FIXED_LAYOUT_MARKER);
    const body = Buffer.from(encoded.value);
    for (let length = 1; length < body.length; length++) {
      const decoded = decodeMessage(body.subarray(0, length));
      assert.equal(decoded.ok, false, `cut at ${length}`);
      assert.match(!decoded.ok ? decoded.error.message : "", /truncated|not a count|kind/);
    }
    const padded = decodeMessage(Buffer.concat([body, Buffer.from([0])]));
    assert.match(!padded.ok ? padded.error.message : "", /1 trailing bytes/);
    const unknownKind = decodeMessage(Buffer.from([FIXED_LAYOUT_MARKER, 99]));
    assert.match(!unknownKind.ok ? unknownKind.error.message : "", /unknown fixed-layout message kind 99/);
    const notCount = Buffer.from(body);
    notCount.writeDoubleBE(0.5, 2 + 3 + 3); // the term
    assert.match(decodeMessage(notCount).ok ? "" : "refused", /refused/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(6), (random, kind) => {
        const decoded = decodeMessage(Buffer.concat([Buffer.from([FIXED_LAYOUT_MARKER, kind + 1]), random]));
        if (!decoded.ok) assert.equal(decoded.error.code, "CONCLAVE_FRAME_MALFORMED");
      }),
      { numRuns: 3000 },
    );
  });

  it("a huge entry count or length in a short body is refused before anything that large is allocated", () => {
    const header = Buffer.from([FIXED_LAYOUT_MARKER, 1, 1, 0x61, 1, 0x62]);
    const numbers = Buffer.alloc(4 * 8);
    const flags = Buffer.from([0]);
    const hugeCount = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const decoded = decodeMessage(Buffer.concat([header, numbers, flags, hugeCount]));
    assert.match(!decoded.ok ? decoded.error.message : "", /truncated byte/);
    const hugeData = Buffer.concat([
      header,
      numbers,
      flags,
      Buffer.from([0, 0, 0, 1, 1]),
      Buffer.alloc(16),
      hugeCount,
    ]);
    const data = decodeMessage(hugeData);
    assert.match(!data.ok ? data.error.message : "", /truncated bytes/);
  });
});
