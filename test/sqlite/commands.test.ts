/**
 * The hand-written check of a plain KV put (the hot path of encode and decode) must agree with
 * the zod schemas on every input: accept exactly what they accept, with the same result, and
 * leave everything else to them (so errors keep their messages). And the primary's clock stamp
 * of forwarded lease commands rewrites those and nothing else.
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
  stampWallClock,
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

describe("stampWallClock: a forwarded lease command restamped with the primary's clock", () => {
  const decoded = (data: Uint8Array): unknown => {
    const result = decodeCommand(data);
    assert.ok(result.ok, "the stamped command is still a valid command");
    return result.command;
  };

  it("replaces the clock of lease grants and keep-alives, also under an idempotency key", () => {
    const grant = encodeCommand({ kind: "kv", op: "lease-grant", ttlMs: 5000, nowMs: 1_000 });
    assert.deepEqual(decoded(stampWallClock(grant, 61_000)), {
      kind: "kv",
      op: "lease-grant",
      ttlMs: 5000,
      nowMs: 61_000,
    });
    const keepAlive = encodeCommand({ kind: "kv", op: "lease-keepalive", leaseId: 7, nowMs: 1_000 });
    assert.deepEqual(decoded(stampWallClock(keepAlive, 61_000)), {
      kind: "kv",
      op: "lease-keepalive",
      leaseId: 7,
      nowMs: 61_000,
    });
    const keyed = {
      kind: "keyed" as const,
      key: "retry-1",
      requestSha256: "a".repeat(64),
      command: { kind: "kv" as const, op: "lease-grant" as const, ttlMs: 5000, nowMs: 1_000 },
    };
    assert.deepEqual(decoded(stampWallClock(encodeCommand(keyed), 61_000)), {
      ...keyed,
      command: { ...keyed.command, nowMs: 61_000 },
    });
  });

  it("leaves every other command, and data that does not decode, byte for byte as it came", () => {
    const others = [
      encodeCommand({ kind: "kv", op: "put", key: "k", value: new Uint8Array([1]) }),
      encodeCommand({ kind: "kv", op: "lease-revoke", leaseId: 7 }),
      // The primary's own expiry clock is never rewritten on the way.
      encodeCommand({ kind: "kv", op: "lease-expire", nowMs: 1_000 }),
      encodeCommand({ kind: "sql", statements: [{ sql: "SELECT 1" }] }),
      new Uint8Array([0xc1, 0xff]),
    ];
    for (const data of others) assert.equal(stampWallClock(data, 61_000), data);
  });
});
