/**
 * The codec of session messages: a fixed binary layout for the messages sent for every write
 * (Raft appends, their answers, heartbeats, forwarded proposals and their results), msgpack for
 * everything else.
 *
 * Why: msgpackr in records mode describes every object's keys inside each message, so an
 * append of three 140-byte entries took ~10 µs to encode and ~11 µs to decode, an answer ~3 µs
 * each way (micro-benchmark, session 18) — a few % of a member's CPU at put ×64. The fixed
 * layout does the same in about a tenth of that.
 *
 * A fixed-layout body starts with 0xc1, the one byte msgpack never uses, then a kind byte; the
 * fields follow in a fixed order: strings as u8 length + UTF-8 (node ids), numbers as float64
 * (indexes, terms and ids are safe integers, checked on decode), bytes as u32 length + bytes.
 * The encoder takes a message only when it has exactly the expected fields with the expected
 * types (anything else, e.g. a config entry or a failed forward, goes as msgpack), so a field
 * added later is never dropped silently. The decoder is bounded like msgpack's: every length is
 * checked against the bytes left, trailing bytes are an error, byte fields are copied (a kept
 * entry never pins the received chunk), into a ByteArena's slabs (lib/byte-arena.ts).
 */
import { ByteArena } from "../../lib/byte-arena.ts";
import { type CodecResult, decodeBody, encodeBody } from "./frame-codec.ts";

/** First byte of a fixed-layout body: reserved ("never used") in msgpack. */
export const FIXED_LAYOUT_MARKER = 0xc1;

const KIND_APPEND = 1;
const KIND_APPEND_RESPONSE = 2;
const KIND_HEARTBEAT = 3;
const KIND_HEARTBEAT_RESPONSE = 4;
const KIND_FORWARD_PROPOSE = 5;
const KIND_FORWARD_RESULT = 6;

const ENTRY_COMMAND = 1;
const ENTRY_NOOP = 3;

/** Node ids and step names longer than this (in UTF-8 bytes) go as msgpack. */
const SHORT_STRING_BYTES_MAX = 255;
/** A forward result's trace: at most this many steps go in the fixed layout. */
const TRACE_STEPS_MAX = 255;

/** Encodes a session message: the fixed layout when it has one of those shapes, else msgpack. */
export function encodeMessage(value: unknown): CodecResult<Uint8Array> {
  const fixed = encodeFixed(value);
  return fixed === null ? encodeBody(value) : { ok: true, value: fixed };
}

/** Decodes a session message body of either form. Never throws. */
export function decodeMessage(body: Uint8Array): CodecResult<unknown> {
  if (body.length === 0 || body[0] !== FIXED_LAYOUT_MARKER) return decodeBody(body);
  try {
    return { ok: true, value: decodeFixed(new ByteReader(body)) };
  } catch (error) {
    const message = error instanceof FixedLayoutError ? error.message : String(error);
    return { ok: false, error: { code: "CONCLAVE_FRAME_MALFORMED", message } };
  }
}

// ---------------------------------------------------------------------------------- encoding

type Fields = Record<string, unknown>;

function encodeFixed(value: unknown): Uint8Array | null {
  if (value === null || typeof value !== "object") return null;
  const m = value as Fields;
  switch (m.type) {
    case "append":
      return encodeAppend(m);
    case "append-response":
      return encodeAppendResponse(m);
    case "heartbeat":
      return encodeEnvelopeAndTwoCounts(KIND_HEARTBEAT, m, "commit", "round");
    case "heartbeat-response":
      return encodeEnvelopeAndTwoCounts(KIND_HEARTBEAT_RESPONSE, m, "round", "lastIndex");
    case "forward-propose":
      return encodeForwardPropose(m);
    case "forward-result":
      return encodeForwardResult(m);
    default:
      return null;
  }
}

/** A heartbeat or its answer: Raft's envelope and two counts, in the order the decoder reads them. */
function encodeEnvelopeAndTwoCounts(
  kind: number,
  m: Fields,
  first: string,
  second: string,
): Uint8Array | null {
  if (!hasOnly(m, 6) || !envelopeOk(m) || !counts(m[first], m[second])) return null;
  return envelope(kind, m, 16)
    .number(m[first] as number)
    .number(m[second] as number)
    .done();
}

function encodeAppend(m: Fields): Uint8Array | null {
  if (!hasOnly(m, 9) || !envelopeOk(m) || !counts(m.prevIndex, m.prevTerm, m.commit)) return null;
  if (typeof m.commitOnly !== "boolean" || !Array.isArray(m.entries)) return null;
  let bytes = 3 * 8 + 1 + 4; // prevIndex, prevTerm, commit; commitOnly; the entry count
  for (const entry of m.entries as unknown[]) {
    const size = entryBytes(entry);
    if (size < 0) return null;
    bytes += size;
  }
  const writer = envelope(KIND_APPEND, m, bytes)
    .number(m.prevIndex as number)
    .number(m.prevTerm as number)
    .number(m.commit as number)
    .byte(m.commitOnly ? 1 : 0)
    .u32(m.entries.length);
  for (const entry of m.entries as Fields[]) {
    writer
      .byte(entry.kind === "command" ? ENTRY_COMMAND : ENTRY_NOOP)
      .number(entry.index as number)
      .number(entry.term as number);
    if (entry.kind === "command") writer.bytes(entry.data as Uint8Array);
  }
  return writer.done();
}

/** Bytes an entry takes in the fixed layout, or -1 when it has none (a config entry, a stranger). */
function entryBytes(value: unknown): number {
  if (value === null || typeof value !== "object") return -1;
  const entry = value as Fields;
  if (!counts(entry.index, entry.term)) return -1;
  if (entry.kind === "noop" && hasOnly(entry, 3)) return 1 + 16;
  if (entry.kind === "command" && hasOnly(entry, 4) && entry.data instanceof Uint8Array)
    return 1 + 16 + 4 + entry.data.length;
  return -1;
}

function encodeAppendResponse(m: Fields): Uint8Array | null {
  if (!hasOnly(m, 10) || !envelopeOk(m) || typeof m.success !== "boolean") return null;
  if (!counts(m.matchIndex, m.rejectedIndex, m.conflictIndex, m.conflictTerm, m.lastIndex)) return null;
  return envelope(KIND_APPEND_RESPONSE, m, 1 + 5 * 8)
    .byte(m.success ? 1 : 0)
    .number(m.matchIndex as number)
    .number(m.rejectedIndex as number)
    .number(m.conflictIndex as number)
    .number(m.conflictTerm as number)
    .number(m.lastIndex as number)
    .done();
}

function encodeForwardPropose(m: Fields): Uint8Array | null {
  const optional = (m.stampAtPrimary === undefined ? 0 : 1) + (m.trace === undefined ? 0 : 1);
  if (!hasOnly(m, 6 + optional) || !(m.data instanceof Uint8Array)) return null;
  if (!counts(m.id, m.timeoutMs) || (m.stampAtPrimary !== undefined && m.stampAtPrimary !== true))
    return null;
  if (m.trace !== undefined && !counts(m.trace)) return null;
  const from = shortString(m.from);
  const to = shortString(m.to);
  if (from === null || to === null) return null;
  return new ByteWriter(
    KIND_FORWARD_PROPOSE,
    8 + 1 + from.length + 1 + to.length + 8 + 1 + 8 + 4 + m.data.length,
  )
    .number(m.id as number)
    .string(from)
    .string(to)
    .number(m.timeoutMs as number)
    .byte((m.stampAtPrimary === true ? 1 : 0) | (m.trace === undefined ? 0 : 2))
    .number(m.trace === undefined ? 0 : (m.trace as number))
    .bytes(m.data)
    .done();
}

/** Only a successful outcome: failures are rare and have optional fields; they go as msgpack. */
function encodeForwardResult(m: Fields): Uint8Array | null {
  if (!hasOnly(m, m.trace === undefined ? 5 : 6) || !counts(m.id)) return null;
  const outcome = m.outcome as Fields | null;
  if (outcome === null || typeof outcome !== "object" || outcome.ok !== true || !hasOnly(outcome, 4))
    return null;
  if (!counts(outcome.index, outcome.term) || !("result" in outcome)) return null;
  const from = shortString(m.from);
  const to = shortString(m.to);
  if (from === null || to === null) return null;
  let traceBytes = 1;
  const steps: Uint8Array[] = [];
  if (m.trace !== undefined) {
    if (!Array.isArray(m.trace) || m.trace.length >= TRACE_STEPS_MAX) return null;
    for (const step of m.trace as unknown[]) {
      if (!Array.isArray(step) || step.length !== 2 || !counts(step[1])) return null;
      const name = shortString(step[0]);
      if (name === null) return null;
      steps.push(name);
      traceBytes += 1 + name.length + 8;
    }
  }
  const packed = encodeBody(outcome.result); // the result is any value: msgpack inside
  if (!packed.ok) return null; // msgpack says why when it encodes the whole message
  const result = packed.value;
  const writer = new ByteWriter(
    KIND_FORWARD_RESULT,
    8 + 1 + from.length + 1 + to.length + 16 + 4 + result.length + traceBytes,
  )
    .number(m.id as number)
    .string(from)
    .string(to)
    .number(outcome.index as number)
    .number(outcome.term as number)
    .bytes(result)
    .byte(m.trace === undefined ? TRACE_STEPS_MAX : steps.length);
  if (m.trace !== undefined) {
    const trace = m.trace as [string, number][];
    for (const [at, name] of steps.entries()) writer.string(name).number((trace[at] as [string, number])[1]);
  }
  return writer.done();
}

/** True when `m` has exactly `count` own enumerable fields (the ones the caller then checks). */
function hasOnly(m: Fields, count: number): boolean {
  let fields = 0;
  for (const key in m) if (Object.hasOwn(m, key)) fields += 1;
  return fields === count;
}

/** Raft's envelope: from, to (short strings), term. */
function envelopeOk(m: Fields): boolean {
  // A UTF-16 unit takes at most 3 bytes in UTF-8: these always fit a short string.
  const idCharsMax = SHORT_STRING_BYTES_MAX / 3;
  return (
    typeof m.from === "string" &&
    typeof m.to === "string" &&
    m.from.length <= idCharsMax &&
    m.to.length <= idCharsMax &&
    counts(m.term)
  );
}

function envelope(kind: number, m: Fields, bodyBytes: number): ByteWriter {
  const from = Buffer.from(m.from as string);
  const to = Buffer.from(m.to as string);
  return new ByteWriter(kind, 1 + from.length + 1 + to.length + 8 + bodyBytes)
    .string(from)
    .string(to)
    .number(m.term as number);
}

/** True when every value is a safe integer ≥ 0 (what an index, term, id or duration is). */
function counts(...values: unknown[]): boolean {
  for (const value of values) if (!Number.isSafeInteger(value) || (value as number) < 0) return false;
  return true;
}

function shortString(value: unknown): Buffer | null {
  if (typeof value !== "string" || value.length > SHORT_STRING_BYTES_MAX) return null;
  const bytes = Buffer.from(value);
  return bytes.length <= SHORT_STRING_BYTES_MAX ? bytes : null;
}

/** Writes into a buffer of the exact size computed up front. */
class ByteWriter {
  readonly #buffer: Buffer;
  #at = 2;

  constructor(kind: number, bodyBytes: number) {
    this.#buffer = Buffer.allocUnsafe(2 + bodyBytes);
    this.#buffer[0] = FIXED_LAYOUT_MARKER;
    this.#buffer[1] = kind;
  }

  byte(value: number): this {
    this.#buffer[this.#at] = value;
    this.#at += 1;
    return this;
  }

  u32(value: number): this {
    this.#buffer.writeUInt32BE(value, this.#at);
    this.#at += 4;
    return this;
  }

  number(value: number): this {
    this.#buffer.writeDoubleBE(value, this.#at);
    this.#at += 8;
    return this;
  }

  string(utf8: Uint8Array): this {
    this.byte(utf8.length);
    this.#buffer.set(utf8, this.#at);
    this.#at += utf8.length;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.u32(value.length);
    this.#buffer.set(value, this.#at);
    this.#at += value.length;
    return this;
  }

  done(): Buffer {
    if (this.#at !== this.#buffer.length)
      throw new Error(`fixed layout sized ${this.#buffer.length}, wrote ${this.#at}`);
    return this.#buffer;
  }
}

// ---------------------------------------------------------------------------------- decoding

class FixedLayoutError extends Error {}

function decodeFixed(reader: ByteReader): unknown {
  const kind = reader.byte();
  const value = decodeKind(kind, reader);
  if (!reader.atEnd())
    throw new FixedLayoutError(`${reader.left} trailing bytes after a message of kind ${kind}`);
  return value;
}

function decodeKind(kind: number, r: ByteReader): unknown {
  switch (kind) {
    case KIND_APPEND: {
      const { from, to, term } = readEnvelope(r);
      const prevIndex = r.count();
      const prevTerm = r.count();
      const commit = r.count();
      const commitOnly = r.flag();
      const entryCount = r.u32();
      const entries: unknown[] = [];
      for (let at = 0; at < entryCount; at++) {
        const entryKind = r.byte();
        const index = r.count();
        const entryTerm = r.count();
        if (entryKind === ENTRY_COMMAND)
          entries.push({ kind: "command", index, term: entryTerm, data: r.bytes() });
        else if (entryKind === ENTRY_NOOP) entries.push({ kind: "noop", index, term: entryTerm });
        else throw new FixedLayoutError(`unknown entry kind ${entryKind}`);
      }
      return { type: "append", from, to, term, prevIndex, prevTerm, entries, commit, commitOnly };
    }
    case KIND_APPEND_RESPONSE: {
      const { from, to, term } = readEnvelope(r);
      const success = r.flag();
      const matchIndex = r.count();
      const rejectedIndex = r.count();
      const conflictIndex = r.count();
      const conflictTerm = r.count();
      const lastIndex = r.count();
      return {
        type: "append-response",
        from,
        to,
        term,
        success,
        matchIndex,
        rejectedIndex,
        conflictIndex,
        conflictTerm,
        lastIndex,
      };
    }
    case KIND_HEARTBEAT: {
      const { from, to, term } = readEnvelope(r);
      return { type: "heartbeat", from, to, term, commit: r.count(), round: r.count() };
    }
    case KIND_HEARTBEAT_RESPONSE: {
      const { from, to, term } = readEnvelope(r);
      return { type: "heartbeat-response", from, to, term, round: r.count(), lastIndex: r.count() };
    }
    case KIND_FORWARD_PROPOSE: {
      const id = r.count();
      const from = r.string();
      const to = r.string();
      const timeoutMs = r.count();
      const flags = r.byte();
      const trace = r.count();
      const data = r.bytes();
      if (flags > 3) throw new FixedLayoutError(`unknown forward flags ${flags}`);
      return {
        type: "forward-propose",
        id,
        from,
        to,
        data,
        timeoutMs,
        ...((flags & 1) === 1 ? { stampAtPrimary: true } : {}),
        ...((flags & 2) === 2 ? { trace } : {}),
      };
    }
    case KIND_FORWARD_RESULT: {
      const id = r.count();
      const from = r.string();
      const to = r.string();
      const index = r.count();
      const term = r.count();
      const packed = r.view();
      const decoded = decodeBody(packed);
      if (!decoded.ok) throw new FixedLayoutError(`forward result: ${decoded.error.message}`);
      const outcome = { ok: true, index, term, result: decoded.value };
      const stepCount = r.byte();
      if (stepCount === TRACE_STEPS_MAX) return { type: "forward-result", id, from, to, outcome };
      const trace: [string, number][] = [];
      for (let at = 0; at < stepCount; at++) trace.push([r.string(), r.count()]);
      return { type: "forward-result", id, from, to, outcome, trace };
    }
    default:
      throw new FixedLayoutError(`unknown fixed-layout message kind ${kind}`);
  }
}

function readEnvelope(r: ByteReader): { from: string; to: string; term: number } {
  const from = r.string();
  const to = r.string();
  return { from, to, term: r.count() };
}

/**
 * Where the bytes a message keeps beyond its frame are copied to: log entries and forwarded
 * commands, which the log drops in the order they came (see ByteArena for why and the bound).
 */
const keptBytesArena = new ByteArena();

/** Reads a fixed-layout body; every read is bounds-checked and throws FixedLayoutError. */
class ByteReader {
  readonly #body: Buffer;
  #at = 1; // after the marker

  constructor(body: Uint8Array) {
    this.#body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }

  get left(): number {
    return this.#body.length - this.#at;
  }

  atEnd(): boolean {
    return this.#at === this.#body.length;
  }

  #need(bytes: number, what: string): number {
    if (bytes > this.left) throw new FixedLayoutError(`truncated ${what} at byte ${this.#at}`);
    const at = this.#at;
    this.#at += bytes;
    return at;
  }

  byte(): number {
    return this.#body[this.#need(1, "byte")] as number;
  }

  flag(): boolean {
    const value = this.byte();
    if (value > 1) throw new FixedLayoutError(`flag of ${value} at byte ${this.#at - 1}`);
    return value === 1;
  }

  u32(): number {
    return this.#body.readUInt32BE(this.#need(4, "length"));
  }

  /** A safe integer ≥ 0 sent as float64. */
  count(): number {
    const at = this.#need(8, "number");
    const value = this.#body.readDoubleBE(at);
    if (!Number.isSafeInteger(value) || value < 0) throw new FixedLayoutError(`not a count at byte ${at}`);
    return value;
  }

  string(): string {
    const length = this.byte();
    const at = this.#need(length, "string");
    return this.#body.toString("utf8", at, at + length);
  }

  /** Bytes that outlive the frame (entries, forwarded commands): a copy, from the arena. */
  bytes(): Uint8Array {
    return keptBytesArena.copy(this.view());
  }

  /** Bytes read at once and not kept: a view. */
  view(): Uint8Array {
    const length = this.u32();
    const at = this.#need(length, "bytes");
    return new Uint8Array(this.#body.buffer, this.#body.byteOffset + at, length);
  }
}
