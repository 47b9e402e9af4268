/**
 * The plain KV put in a fixed binary layout, the one command that is not msgpack.
 *
 * Why: a put is most of what a cluster applies, and each one is encoded once and decoded on
 * every member (and once more on the primary when a secondary forwarded it, for the clock
 * stamp). In msgpackr's records mode without shared structures that cost 1.2–1.9 µs to encode
 * and 1.2–1.5 µs per decode (docs/benchmarks.md, session 26); this layout costs a third to a
 * half of that, and a put of a 100-byte value under a 6-byte key is 107 bytes instead of 134.
 *
 * Layout (little-endian):
 *
 * | bytes | field |
 * |---|---|
 * | 1 | `0xc1`: msgpack never uses this byte, so no msgpack command starts with it |
 * | 1 | layout: `0x01` = KV put |
 * | 1 | flags: bit 0 = a lease id follows the key; the other bits are 0 |
 * | 2 | key length in bytes, 1 to kvKeyBytesMax |
 * | n | key, UTF-8 |
 * | 8 | lease id (float64, a positive safe integer), only with flag bit 0 |
 * | rest | value, up to kvValueBytesMax |
 *
 * An earlier release reads such an entry as invalid msgpack: cluster protocol version 4 keeps
 * it out of a cluster that writes them (src/adapters/transport/handshake.ts), and
 * docs/operations.md says not to downgrade a data directory that holds them.
 */
import type { ByteArena } from "../../lib/byte-arena.ts";

/**
 * First byte of every fixed-layout command (0xc1 is "never used" in msgpack): the same mark the
 * cluster transport gives its fixed-layout messages (src/adapters/transport/message-codec.ts).
 */
const FIXED_LAYOUT_MARK = 0xc1;
/** Second byte: which fixed layout. */
const PUT_LAYOUT = 0x01;
const leaseFlag = 0x01;
const headerBytes = 5;
const leaseBytes = 8;

/** A put as this layout carries it (the fields of `{ kind: "kv", op: "put", … }`). */
export interface PutFields {
  readonly key: string;
  readonly value: Uint8Array<ArrayBuffer>;
  readonly lease?: number | undefined;
}

/** True when `data` is in a fixed layout (not msgpack), whether or not it is a valid one. */
export function isFixedLayout(data: Uint8Array): boolean {
  return data[0] === FIXED_LAYOUT_MARK;
}

/**
 * Encodes a put that has already been checked (key 1 to kvKeyBytesMax UTF-8 bytes, `keyBytes`
 * of them; value within kvValueBytesMax; lease a positive safe integer) into a piece of `arena`.
 */
export function encodePut(put: PutFields, keyBytes: number, arena: ByteArena): Uint8Array {
  const hasLease = put.lease !== undefined;
  const length = headerBytes + keyBytes + (hasLease ? leaseBytes : 0) + put.value.byteLength;
  const out = arena.allocate(length);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = FIXED_LAYOUT_MARK;
  out[1] = PUT_LAYOUT;
  out[2] = hasLease ? leaseFlag : 0;
  view.setUint16(3, keyBytes, true);
  const written = textEncoder.encodeInto(put.key, out.subarray(headerBytes, headerBytes + keyBytes)).written;
  if (written !== keyBytes) throw new RangeError(`key is ${written} UTF-8 bytes, expected ${keyBytes}`);
  let at = headerBytes + keyBytes;
  if (put.lease !== undefined) {
    view.setFloat64(at, put.lease, true);
    at += leaseBytes;
  }
  out.set(put.value, at);
  return out;
}

const textEncoder = new TextEncoder();

/** What a fixed-layout command decodes to: the put's fields, or why the bytes are not one. */
export type FixedLayoutDecoded = { ok: true; put: PutFields } | { ok: false; message: string };

/**
 * Decodes a fixed-layout command; never throws. The value is a view into `data` (as msgpackr's
 * binary values are): log entries are never written to after they are made.
 */
export function decodeFixedLayout(
  data: Uint8Array,
  keyBytesMax: number,
  valueBytesMax: number,
): FixedLayoutDecoded {
  if (data.byteLength < headerBytes)
    return invalid(`it is ${data.byteLength} bytes, shorter than its header`);
  if (data[1] !== PUT_LAYOUT)
    return invalid(`layout ${String(data[1])} is unknown (this release knows 1, KV put)`);
  const flags = data[2] as number;
  if ((flags & ~leaseFlag) !== 0) return invalid(`flags ${flags} has unknown bits`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const keyLength = view.getUint16(3, true);
  if (keyLength < 1 || keyLength > keyBytesMax)
    return invalid(`key length ${keyLength} is not 1 to ${keyBytesMax}`);
  const keyEnd = headerBytes + keyLength;
  const valueStart = keyEnd + ((flags & leaseFlag) !== 0 ? leaseBytes : 0);
  if (valueStart > data.byteLength) return invalid("it ends inside its key or lease");
  const key = decodeKey(data, headerBytes, keyEnd);
  if (key === null) return invalid("the key is not UTF-8");
  const value = data.subarray(valueStart) as Uint8Array<ArrayBuffer>;
  if (value.byteLength > valueBytesMax) return invalid(`the value is larger than ${valueBytesMax} bytes`);
  if ((flags & leaseFlag) === 0) return { ok: true, put: { key, value } };
  const lease = view.getFloat64(keyEnd, true);
  if (!(Number.isSafeInteger(lease) && lease > 0)) return invalid(`lease ${lease} is not a positive integer`);
  return { ok: true, put: { key, value, lease } };
}

/** Keys up to this many bytes are tried as ASCII first. */
const asciiKeyBytesMax = 64;
// fatal: invalid UTF-8 is refused, not replaced; ignoreBOM: a leading U+FEFF is part of the key.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The key in `data[start, end)`, or null when it is not UTF-8. A short ASCII key (the usual
 * one) is read byte by byte: 60 ns against 200–300 ns for TextDecoder (measured, session 26).
 */
function decodeKey(data: Uint8Array, start: number, end: number): string | null {
  if (end - start <= asciiKeyBytesMax) {
    let key = "";
    let at = start;
    for (; at < end; at += 1) {
      const byte = data[at] as number;
      if (byte > 0x7f) break;
      key += String.fromCharCode(byte);
    }
    if (at === end) return key;
  }
  try {
    return utf8Decoder.decode(data.subarray(start, end));
  } catch {
    return null;
  }
}

function invalid(why: string): { ok: false; message: string } {
  return { ok: false, message: `the entry is not a valid fixed-layout KV put: ${why}` };
}
