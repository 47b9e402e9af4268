/**
 * The frame tag computed with one-shot hashes (src/adapters/transport/frame-mac.ts) is exactly
 * HMAC-SHA256 as `createHmac` computes it: for keys shorter and longer than a block, both
 * directions, and payloads on both sides of the size where it switches to `createHmac`. Tags
 * come back as latin1 strings; their bytes are compared.
 */
import assert from "node:assert/strict";
import { createHmac, createSecretKey, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { FrameMac, MAC_RESERVED_BYTES } from "../../src/adapters/transport/frame-mac.ts";

function referenceTag(key: Uint8Array, direction: number, sequence: Uint8Array, payload: Uint8Array): Buffer {
  return createHmac("sha256", key)
    .update(new Uint8Array([direction]))
    .update(sequence)
    .update(payload)
    .digest();
}

/** A tag's bytes: FrameMac returns them as a latin1 string (one character per byte). */
function bytesOf(tag: string): Buffer {
  assert.equal(tag.length, 32);
  return Buffer.from(tag, "latin1");
}

describe("FrameMac", () => {
  it("equals createHmac's HMAC-SHA256 for any key, direction, sequence and payload", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.constantFrom(1, 2),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.uint8Array({ maxLength: 2048 }),
        (key, direction, sequence, payload) => {
          const mac = new FrameMac(createSecretKey(key));
          assert.deepEqual(
            bytesOf(mac.tag(direction, sequence, payload)),
            referenceTag(key, direction, sequence, payload),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("gives the same tags around the one-shot size limit and when reused for many frames", () => {
    const key = randomBytes(32);
    const mac = new FrameMac(createSecretKey(key));
    const sequence = Buffer.alloc(8);
    for (const size of [0, 1, 63, 64, 65, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 100_000]) {
      for (let frame = 0; frame < 3; frame++) {
        sequence.writeUInt32BE(frame, 4);
        const payload = randomBytes(size);
        assert.deepEqual(
          bytesOf(mac.tag(2, sequence, payload)),
          referenceTag(key, 2, sequence, payload),
          `${size} bytes`,
        );
      }
    }
  });

  it("tags a message built after the reserved block, and a message in chunks, as createHmac does", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 5 }),
        (key, chunks) => {
          const mac = new FrameMac(createSecretKey(key));
          const message = Buffer.concat(chunks);
          const expected = createHmac("sha256", key).update(message).digest();
          const inner = Buffer.concat([randomBytes(MAC_RESERVED_BYTES), message]);
          assert.deepEqual(bytesOf(mac.tagReserved(inner)), expected);
          assert.deepEqual(bytesOf(mac.tagChunks(chunks)), expected);
        },
      ),
      { numRuns: 200 },
    );
  });
});
