/**
 * The hand-written check of a plain KV put (the hot path of encode and decode) must agree with
 * the zod schemas on every input: accept exactly what they accept, with the same result, and
 * leave everything else to them (so errors keep their messages).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Packr } from "msgpackr";
import {
  decodeCommand,
  encodeCommand,
  kvKeyBytesMax,
  kvValueBytesMax,
  validateBySchema,
} from "../../src/adapters/sqlite/commands.ts";

const putLike = fc.record(
  {
    kind: fc.constantFrom("kv", "kv", "kv", "sql", "KV", undefined),
    op: fc.constantFrom("put", "put", "put", "delete", "PUT"),
    key: fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constant(""),
      fc.constant("é".repeat(kvKeyBytesMax / 2)),
      fc.constant("k".repeat(kvKeyBytesMax + 1)),
      fc.integer(),
    ),
    value: fc.oneof(
      { arbitrary: fc.uint8Array({ maxLength: 16 }), weight: 4 },
      { arbitrary: fc.constant(new Uint8Array(kvValueBytesMax + 1)), weight: 1 },
      { arbitrary: fc.string(), weight: 1 },
    ),
    lease: fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 3 },
      { arbitrary: fc.integer({ min: -2, max: 5 }), weight: 2 },
      { arbitrary: fc.double(), weight: 1 },
      { arbitrary: fc.constant(2 ** 60), weight: 1 },
      { arbitrary: fc.constant("7"), weight: 1 },
    ),
    extra: fc.constantFrom(undefined, undefined, undefined, 1),
  },
  { requiredKeys: ["kind", "op", "key", "value"] },
);

describe("the KV put fast path of command validation", () => {
  it("agrees with the schemas on random put-like commands, through encode and decode", () => {
    let accepted = 0;
    fc.assert(
      fc.property(putLike, (command) => {
        const bySchema = validateBySchema(command);
        if (bySchema.ok) accepted += 1;
        let encoded: Uint8Array | null = null;
        try {
          encoded = encodeCommand(command as never);
        } catch (error) {
          assert.equal(bySchema.ok, false, `encode refused what the schemas accept: ${String(error)}`);
          return;
        }
        assert.equal(bySchema.ok, true, "encode accepted what the schemas refuse");
        const decoded = decodeCommand(encoded);
        const reference = validateBySchema(decodeReference(encoded));
        assert.deepEqual(decoded, reference);
      }),
      { numRuns: 3000 },
    );
    assert.ok(accepted > 150, `only ${accepted} of 3000 generated puts were valid`);
  });

  it("refuses an invalid put with the schema's message", () => {
    assert.throws(
      () => encodeCommand({ kind: "kv", op: "put", key: "", value: new Uint8Array(1) }),
      /a key must be 1 to kvKeyBytesMax/,
    );
    assert.throws(
      () => encodeCommand({ kind: "kv", op: "put", key: "k", value: new Uint8Array(kvValueBytesMax + 1) }),
      /larger than kvValueBytesMax/,
    );
  });
});

/** The command as msgpack gives it back, before any validation (the log's packing options). */
function decodeReference(encoded: Uint8Array): unknown {
  return new Packr({ useRecords: true, int64AsType: "bigint" }).unpack(encoded);
}
