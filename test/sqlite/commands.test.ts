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
        const isPut = bySchema.ok && bySchema.command.kind === "kv" && bySchema.command.op === "put";
        assert.equal(encoded[0] === 0xc1, isPut, "puts, and only puts, are encoded in the fixed layout");
        // The schemas keep a field given as undefined (`lease: undefined`); the log does not.
        const expected = { ok: true, command: withoutUndefined(bySchema.ok ? bySchema.command : {}) };
        assert.deepEqual(decodeCommand(encoded), expected);
        // The same put as an earlier release logged it (msgpack) still decodes to the same command.
        const logged = packReference(command);
        assert.deepEqual(decodeCommand(logged), validateBySchema(decodeReference(logged)));
        const fromLog = decodeCommand(logged);
        assert.ok(fromLog.ok);
        assert.deepEqual(withoutUndefined(fromLog.command), expected.command);
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

function withoutUndefined(value: object): object {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined));
}

/** The command as msgpack gives it back, before any validation (the log's packing options). */
function decodeReference(encoded: Uint8Array): unknown {
  return new Packr({ useRecords: true, int64AsType: "bigint" }).unpack(encoded);
}

/** The command as the log's msgpack encodes it (how every command was logged before protocol 4). */
function packReference(command: unknown): Uint8Array {
  return Uint8Array.from(new Packr({ useRecords: true, int64AsType: "bigint" }).pack(command));
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

describe("the fixed layout of a KV put (protocol version 4)", () => {
  const invalidMessage = (data: Uint8Array): string => {
    const decoded = decodeCommand(data);
    assert.equal(decoded.ok, false, "decoded what is not a valid put");
    if (decoded.ok) return "";
    assert.equal(decoded.problem.code, "CONCLAVE_COMMAND_INVALID");
    return decoded.problem.message;
  };

  it("writes the documented bytes and reads them back", () => {
    const plain = encodeCommand({ kind: "kv", op: "put", key: "ké", value: Uint8Array.from([1, 2, 3]) });
    assert.deepEqual([...plain], [0xc1, 0x01, 0x00, 3, 0, 0x6b, 0xc3, 0xa9, 1, 2, 3]);
    assert.deepEqual(decodeCommand(plain), {
      ok: true,
      command: { kind: "kv", op: "put", key: "ké", value: Uint8Array.from([1, 2, 3]) },
    });
    const leased = encodeCommand({ kind: "kv", op: "put", key: "k", value: new Uint8Array(0), lease: 7 });
    const lease = Buffer.alloc(8);
    lease.writeDoubleLE(7);
    assert.deepEqual([...leased], [0xc1, 0x01, 0x01, 1, 0, 0x6b, ...lease]);
    assert.deepEqual(decodeCommand(leased), {
      ok: true,
      command: { kind: "kv", op: "put", key: "k", value: new Uint8Array(0), lease: 7 },
    });
  });

  it("refuses malformed bytes with a message naming the problem", () => {
    const put = (...bytes: number[]): Uint8Array => Uint8Array.from([0xc1, 0x01, ...bytes]);
    assert.match(invalidMessage(Uint8Array.from([0xc1, 0x01, 0x00])), /shorter than its header/);
    assert.match(invalidMessage(Uint8Array.from([0xc1, 0x07, 0, 1, 0, 0x6b])), /layout 7 is unknown/);
    assert.match(invalidMessage(put(0x02, 1, 0, 0x6b)), /flags 2 has unknown bits/);
    assert.match(invalidMessage(put(0, 0, 0)), /key length 0 is not 1 to 1024/);
    const tooLong = kvKeyBytesMax + 1;
    assert.match(invalidMessage(put(0, tooLong & 0xff, tooLong >> 8)), /key length 1025 is not 1 to 1024/);
    assert.match(invalidMessage(put(0, 3, 0, 0x6b)), /ends inside its key or lease/);
    assert.match(invalidMessage(put(1, 1, 0, 0x6b, 0, 0, 0)), /ends inside its key or lease/);
    assert.match(invalidMessage(put(0, 1, 0, 0xff)), /the key is not UTF-8/);
    for (const bad of [0, -3, 1.5, Number.NaN, 2 ** 60]) {
      const lease = Buffer.alloc(8);
      lease.writeDoubleLE(bad);
      assert.match(invalidMessage(put(1, 1, 0, 0x6b, ...lease)), /is not a positive integer/);
    }
    const big = new Uint8Array(6 + kvValueBytesMax + 1);
    big.set([0xc1, 0x01, 0, 1, 0, 0x6b]);
    assert.match(invalidMessage(big), /value is larger than 1048576 bytes/);
  });

  it("never throws on random bytes; what it accepts encodes back to the same bytes", () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom(0, 1),
        fc.nat(5),
        (tail, flags, keyLength) => {
          const data = Uint8Array.from([0xc1, 0x01, flags, keyLength, 0, ...tail]);
          const decoded = decodeCommand(data);
          if (!decoded.ok) return;
          accepted += 1;
          assert.deepEqual([...encodeCommand(decoded.command)], [...data]);
        },
      ),
      { numRuns: 2000 },
    );
    assert.ok(accepted > 100, `only ${accepted} of 2000 were valid puts`);
  });

  it("is left as it is by the primary's clock stamp (a put carries no clock)", () => {
    const data = encodeCommand({ kind: "kv", op: "put", key: "k", value: new Uint8Array(1), lease: 3 });
    assert.equal(stampWallClock(data, 99), data);
  });
});

describe("keys in the fixed layout", () => {
  it("come back exactly: ASCII, multi-byte, long, and with a leading byte order mark", () => {
    for (const key of [
      "a",
      "config/x",
      "ké",
      "日本語",
      "\ufeffbom",
      "x".repeat(kvKeyBytesMax),
      "é".repeat(40),
    ]) {
      const decoded = decodeCommand(encodeCommand({ kind: "kv", op: "put", key, value: new Uint8Array(0) }));
      assert.ok(decoded.ok);
      assert.equal((decoded.command as { key: string }).key, key);
    }
  });
});
