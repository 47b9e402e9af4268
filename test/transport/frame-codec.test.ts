import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decodeBody,
  encodeBody,
  encodeFrame,
  FRAME_BYTES_MAX_DEFAULT,
  FrameDecoder,
} from "../../src/adapters/transport/frame-codec.ts";

/** Splits `bytes` at the given cut points (in any order, duplicates allowed). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((x, y) => x - y);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function decodeAll(decoder: FrameDecoder, chunks: Uint8Array[]): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let read = decoder.next(); read.kind === "frame"; read = decoder.next()) bodies.push(read.body);
  }
  return bodies;
}

describe("frame decoder", () => {
  it("returns every frame whatever the chunking (frames split across chunks, many per chunk)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (bodies, cuts) => {
          const stream = concat(bodies.map(encodeFrame));
          const decoded = decodeAll(new FrameDecoder({ frameBytesMax: 1024 }), split(stream, cuts));
          assert.deepEqual(
            decoded.map((body) => [...body]),
            bodies.map((body) => [...body]),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reports an oversized length at once, before the body arrives, and then yields nothing", () => {
    const decoder = new FrameDecoder({ frameBytesMax: FRAME_BYTES_MAX_DEFAULT });
    const before = process.memoryUsage().arrayBuffers;
    decoder.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    const read = decoder.next();
    assert.deepEqual(read, {
      kind: "oversized",
      lengthBytes: 0xffff_ffff,
      frameBytesMax: FRAME_BYTES_MAX_DEFAULT,
    });
    assert(
      process.memoryUsage().arrayBuffers - before < 1 << 20,
      "nothing sized by the prefix was allocated",
    );
    assert.equal(decoder.bufferedBytes, 0);
    assert.equal(decoder.next().kind, "incomplete");
  });

  it("accepts a frame of exactly frameBytesMax and refuses one byte more", () => {
    const ok = new FrameDecoder({ frameBytesMax: 10 });
    assert.equal(decodeAll(ok, [encodeFrame(new Uint8Array(10))]).length, 1);
    const tooBig = new FrameDecoder({ frameBytesMax: 10 });
    tooBig.push(encodeFrame(new Uint8Array(11)));
    assert.equal(tooBig.next().kind, "oversized");
  });

  it("raising the limit applies to the next header (the handshake-to-session switch)", () => {
    const decoder = new FrameDecoder({ frameBytesMax: 4 });
    decoder.push(concat([encodeFrame(new Uint8Array(4)), encodeFrame(new Uint8Array(100))]));
    assert.equal(decoder.next().kind, "frame");
    decoder.frameBytesMax = 100;
    const read = decoder.next();
    assert.equal(read.kind === "frame" && read.body.length, 100);
  });

  it("copies each byte at most once: a frame inside one chunk is a view of it", () => {
    const chunk = new Uint8Array(
      Buffer.concat([encodeFrame(new Uint8Array([1, 2, 3])), encodeFrame(new Uint8Array([4]))]),
    );
    const decoder = new FrameDecoder({ frameBytesMax: 16 });
    const [first, second] = decodeAll(decoder, [chunk]);
    assert.equal(first?.buffer, chunk.buffer);
    assert.equal(second?.buffer, chunk.buffer);
  });

  it("assembles a large frame from many small chunks", () => {
    const body = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
    const stream = encodeFrame(body);
    const chunks: Uint8Array[] = [];
    for (let offset = 0; offset < stream.length; offset += 1000)
      chunks.push(stream.subarray(offset, offset + 1000));
    const [decoded] = decodeAll(new FrameDecoder({ frameBytesMax: FRAME_BYTES_MAX_DEFAULT }), chunks);
    assert.deepEqual(decoded, body);
  });
});

describe("body codec (msgpackr, records mode)", () => {
  it("round-trips Raft-shaped values, Uint8Array staying Uint8Array", () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            type: fc.constantFrom("append", "vote", "heartbeat"),
            term: fc.nat(),
            data: fc.uint8Array({ maxLength: 100 }),
            entries: fc.array(
              fc.record(
                { index: fc.nat(), data: fc.uint8Array({ maxLength: 20 }) },
                { noNullPrototype: true },
              ),
              { maxLength: 5 },
            ),
            vote: fc.option(fc.string(), { nil: null }),
          },
          { noNullPrototype: true },
        ),
        (message) => {
          const encoded = encodeBody(message);
          assert(encoded.ok);
          const decoded = decodeBody(encoded.value);
          assert(decoded.ok);
          assert.deepEqual(decoded.value, message);
          assert.equal((decoded.value as typeof message).data.constructor, Uint8Array);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("keeps every returned encoding intact while more values are encoded (queues hold them)", () => {
    const encodings = Array.from({ length: 5000 }, (_, i) => {
      const encoded = encodeBody({ i, pad: "x".repeat(i % 50) });
      assert(encoded.ok);
      return encoded.value;
    });
    encodings.forEach((bytes, i) => {
      const decoded = decodeBody(bytes);
      assert(decoded.ok);
      assert.equal((decoded.value as { i: number }).i, i);
    });
  });

  it("decodes every message alone: no record structure is shared between messages", () => {
    const first = encodeBody({ kind: "a", n: 1 });
    const second = encodeBody({ kind: "a", n: 2 });
    assert(first.ok && second.ok);
    // The second message decodes by itself, as on a receiver that never saw the first.
    assert.deepEqual(decodeBody(second.value), { ok: true, value: { kind: "a", n: 2 } });
  });

  it("turns malformed, truncated, trailing and absurdly nested input into a typed error", () => {
    const cases: Record<string, Uint8Array> = {
      empty: new Uint8Array(0),
      truncatedArray: new Uint8Array([0x92, 0x01]),
      truncatedString: new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]),
      hugeBinary: new Uint8Array([0xc6, 0xff, 0xff, 0xff, 0xff, 0x01]),
      trailingBytes: new Uint8Array([0x01, 0x02]),
      badRecord: new Uint8Array([0xd4, 0x72, 0x00, 0x00]),
      nested: new Uint8Array(1_000_000).fill(0x91),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const decoded = decodeBody(bytes);
      assert.equal(decoded.ok, false, name);
      assert.equal(!decoded.ok && decoded.error.code, "CONCLAVE_FRAME_MALFORMED", name);
    }
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        decodeBody(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it("does not let a __proto__ key change an object's prototype", () => {
    const encoded = encodeBody(JSON.parse('{"__proto__": {"polluted": true}, "a": 1}'));
    assert(encoded.ok);
    const decoded = decodeBody(encoded.value);
    assert(decoded.ok);
    assert.equal(Object.getPrototypeOf(decoded.value), Object.prototype);
    assert.equal((decoded.value as { polluted?: boolean }).polluted, undefined);
  });

  it("refuses unencodable values with a typed error instead of throwing", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const value of [Symbol("s"), cyclic]) {
      const encoded = encodeBody(value);
      assert.equal(!encoded.ok && encoded.error.code, "CONCLAVE_MESSAGE_UNENCODABLE");
    }
  });
});
