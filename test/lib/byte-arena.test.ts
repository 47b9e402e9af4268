/**
 * ByteArena: what the log's entry bytes rely on — every copy holds the source's bytes, shares
 * none with the source or with any other copy, and small copies share slabs (the point of it)
 * while large ones do not pin one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ARENA_PIECE_BYTES_MAX, ARENA_SLAB_BYTES, ByteArena } from "../../src/lib/byte-arena.ts";

describe("ByteArena", () => {
  it("copies hold the sources' bytes and stay intact when sources and other copies change", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 60 }), (sources) => {
        const arena = new ByteArena(1024, 256);
        const copies = sources.map((source) => arena.copy(source));
        const expected = sources.map((source) => Buffer.from(source));
        for (const source of sources) source.fill(0xee);
        for (const [at, copy] of copies.entries()) {
          assert.deepEqual(Buffer.from(copy), expected[at]);
        }
        // Overwrite each copy in turn: no other copy may change.
        for (const [at, copy] of copies.entries()) {
          copy.fill(at & 0xff);
          for (const [other, neighbour] of copies.entries()) {
            const want = other <= at ? Buffer.alloc(neighbour.length, other & 0xff) : expected[other];
            assert.deepEqual(Buffer.from(neighbour), want);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it("cuts small copies from one slab until it is full, then starts another", () => {
    const arena = new ByteArena();
    const pieceBytes = 1000;
    const perSlab = Math.floor(ARENA_SLAB_BYTES / pieceBytes);
    const copies = Array.from({ length: perSlab + 1 }, () => arena.copy(new Uint8Array(pieceBytes)));
    const first = copies[0]?.buffer;
    assert.equal(first?.byteLength, ARENA_SLAB_BYTES);
    assert.ok(copies.slice(0, perSlab).every((copy) => copy.buffer === first));
    assert.notEqual(copies[perSlab]?.buffer, first, "the piece that did not fit went to a new slab");
    assert.equal(copies[perSlab]?.byteOffset, 0);
  });

  it("allocates zeroed pieces that overlap no other piece, large ones on their own", () => {
    const arena = new ByteArena(64, 16);
    const pieces = Array.from({ length: 10 }, (_, i) => arena.allocate(1 + (i % 16)));
    for (const [i, piece] of pieces.entries()) {
      assert.ok(
        piece.every((byte) => byte === 0),
        `piece ${i} is zeroed`,
      );
      piece.fill(i + 1);
    }
    for (const [i, piece] of pieces.entries())
      assert.ok(
        piece.every((byte) => byte === i + 1),
        `piece ${i} kept`,
      );
    const large = arena.allocate(17);
    assert.equal(large.buffer.byteLength, 17);
  });

  it("gives a large copy a buffer of its own, also when the source is a Buffer", () => {
    const arena = new ByteArena();
    const source = Buffer.alloc(ARENA_PIECE_BYTES_MAX + 1, 7);
    const copy = arena.copy(source);
    assert.equal(copy.buffer.byteLength, copy.byteLength);
    source.fill(1);
    assert.equal(copy[0], 7, "a Buffer's slice() would have been a view of the source");
  });

  it("refuses a piece limit larger than the slab", () => {
    assert.throws(
      () => new ByteArena(1024, 2048),
      /pieceBytesMax \(2048\) must be between 0 and slabBytes \(1024\)/,
    );
  });
});
