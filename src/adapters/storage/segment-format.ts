/**
 * The byte layout of a log segment file (all integers little-endian):
 *
 * ```
 * header (32 bytes): magic "CNCLVLOG" | version u32 | reserved u32 | firstIndex u64 | crc32 u32 | zero u32
 * record:            bodyBytes u32 | bodyCrc32 u32 | headerCrc32 u32 (of the 8 bytes before) | body
 * ```
 *
 * The record header has its own checksum so that a damaged length is caught before it is used
 * (a bad length would otherwise make good records after it look like a torn tail). After the last
 * record the file may hold zeros (a pre-sized segment); a record is never empty, so zeros never
 * read as one.
 */
import { crc32 } from "node:zlib";

export const SEGMENT_MAGIC = Buffer.from("CNCLVLOG", "latin1");
export const SEGMENT_FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const RECORD_HEADER_BYTES = 12;
/** Largest encoded entry the format accepts (bounds what a damaged length can make us read). */
export const RECORD_BODY_BYTES_MAX = 64 * 1024 * 1024;

/** `00000000000000000001.seg`: names sort by first index. */
export function segmentFileName(firstIndex: number): string {
  return `${String(firstIndex).padStart(20, "0")}.seg`;
}

/** The first index a segment file name claims, or null for other files. */
export function parseSegmentFileName(name: string): number | null {
  const match = /^(\d{20})\.seg$/.exec(name);
  if (match?.[1] === undefined) return null;
  const firstIndex = Number(match[1]);
  return Number.isSafeInteger(firstIndex) ? firstIndex : null;
}

export function encodeSegmentHeader(firstIndex: number): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(header, 0);
  header.writeUInt32LE(SEGMENT_FORMAT_VERSION, 8);
  header.writeBigUInt64LE(BigInt(firstIndex), 16);
  header.writeUInt32LE(crc32(header.subarray(0, 24)), 24);
  return header;
}

/** The first index of a segment header, or a description of what is wrong with it. */
export function decodeSegmentHeader(bytes: Buffer): number | string {
  if (bytes.length < SEGMENT_HEADER_BYTES) return "the segment header is incomplete";
  if (!bytes.subarray(0, 8).equals(SEGMENT_MAGIC)) return "this is not a Conclave log segment (bad magic)";
  if (bytes.readUInt32LE(24) !== crc32(bytes.subarray(0, 24)))
    return "the segment header checksum does not match";
  const version = bytes.readUInt32LE(8);
  if (version !== SEGMENT_FORMAT_VERSION) {
    return `segment format version ${version} is not supported (this Conclave reads version ${SEGMENT_FORMAT_VERSION})`;
  }
  const firstIndex = Number(bytes.readBigUInt64LE(16));
  return Number.isSafeInteger(firstIndex) ? firstIndex : "the segment's first index is out of range";
}

/** Frames one encoded entry as a record. */
export function encodeRecord(body: Uint8Array): Buffer {
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + body.length);
  record.writeUInt32LE(body.length, 0);
  record.writeUInt32LE(crc32(body), 4);
  record.writeUInt32LE(crc32(record.subarray(0, 8)), 8);
  record.set(body, RECORD_HEADER_BYTES);
  return record;
}

/** One record read back: where it starts and its body (a view into the segment's bytes). */
export interface ScannedRecord {
  readonly offsetBytes: number;
  readonly body: Buffer;
}

/** Damage found at `offsetBytes`: a record that is incomplete or fails its checksum. */
export interface RecordDamage {
  readonly offsetBytes: number;
  readonly problem: string;
}

/** Reads the record at `offset`: the record, or what is wrong with it. */
export function readRecord(bytes: Buffer, offset: number): ScannedRecord | RecordDamage {
  if (bytes.length - offset < RECORD_HEADER_BYTES) {
    return { offsetBytes: offset, problem: "the record header is incomplete" };
  }
  if (bytes.readUInt32LE(offset + 8) !== crc32(bytes.subarray(offset, offset + 8))) {
    return { offsetBytes: offset, problem: "the record header checksum does not match" };
  }
  const bodyBytes = bytes.readUInt32LE(offset);
  const bodyStart = offset + RECORD_HEADER_BYTES;
  if (bodyBytes === 0 || bodyBytes > RECORD_BODY_BYTES_MAX) {
    return { offsetBytes: offset, problem: `the record length ${bodyBytes} is impossible` };
  }
  if (bodyStart + bodyBytes > bytes.length) {
    return { offsetBytes: offset, problem: "the record body is incomplete" };
  }
  const body = bytes.subarray(bodyStart, bodyStart + bodyBytes);
  if (crc32(body) !== bytes.readUInt32LE(offset + 4)) {
    return { offsetBytes: offset, problem: "the record body checksum does not match" };
  }
  return { offsetBytes: offset, body };
}

/**
 * True when an intact record (both checksums good) starts anywhere after `offset`. Damage with
 * intact data behind it is not a torn tail: a crash can only tear the end of the last write.
 */
export function intactRecordFollows(bytes: Buffer, offset: number): boolean {
  for (let position = offset + 1; position + RECORD_HEADER_BYTES < bytes.length; position += 1) {
    const bodyBytes = bytes.readUInt32LE(position);
    // Cheap filters first: most positions fail on the length alone.
    if (bodyBytes === 0 || position + RECORD_HEADER_BYTES + bodyBytes > bytes.length) continue;
    const found = readRecord(bytes, position);
    if ("body" in found) return true;
  }
  return false;
}

const zeroBlock = Buffer.alloc(64 * 1024);

/** True when every byte from `offset` to the end of `bytes` is zero (a pre-sized segment's unwritten end). */
export function isZeroFrom(bytes: Buffer, offset: number): boolean {
  for (let position = offset; position < bytes.length; position += zeroBlock.length) {
    const part = bytes.subarray(position, position + zeroBlock.length);
    if (!part.equals(zeroBlock.subarray(0, part.length))) return false;
  }
  return true;
}
