/**
 * Wire framing and the msgpack body codec.
 *
 * A frame is a 4-byte big-endian body length followed by the body. The decoder is streaming:
 * it takes TCP chunks as they come (a frame split over many chunks, many frames in one chunk)
 * and copies each byte at most once — a frame that lies inside one chunk is returned as a view
 * of it, a frame split over chunks is assembled once. A length above `frameBytesMax` is
 * reported before anything is allocated for it, so a hostile 0xFFFFFFFF prefix costs nothing.
 */
import { Packr } from "msgpackr";
import { assert } from "../../lib/assert.ts";

/** Default largest frame body accepted from an authenticated peer. */
export const FRAME_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;
/** Bytes of the length prefix. */
export const FRAME_HEADER_BYTES = 4;
/** Largest length a 4-byte prefix can express. */
const FRAME_LENGTH_LIMIT = 0xffff_ffff;
/** Consumed chunks are dropped from the list in batches, so shifting the array stays cheap. */
const CONSUMED_CHUNKS_COMPACT_AT = 32;

/** One step of the decoder: a whole frame body, not enough bytes yet, or a fatal oversize. */
export type FrameRead =
  | { readonly kind: "frame"; readonly body: Uint8Array }
  | { readonly kind: "incomplete" }
  | { readonly kind: "oversized"; readonly lengthBytes: number; readonly frameBytesMax: number };

const INCOMPLETE: FrameRead = { kind: "incomplete" };

/** Prefixes `body` with its length. */
export function encodeFrame(body: Uint8Array): Uint8Array {
  assert(body.length <= FRAME_LENGTH_LIMIT, "frame body longer than a 4-byte length can express");
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  writeFrameHeader(frame, 0, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/** Writes a big-endian length prefix at `offset`. */
export function writeFrameHeader(target: Uint8Array, offset: number, bodyLength: number): void {
  target[offset] = bodyLength >>> 24;
  target[offset + 1] = (bodyLength >>> 16) & 0xff;
  target[offset + 2] = (bodyLength >>> 8) & 0xff;
  target[offset + 3] = bodyLength & 0xff;
}

/**
 * Splits a byte stream into frame bodies.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder({ frameBytesMax: 4096 });
 * socket.on("data", (chunk) => {
 *   decoder.push(chunk);
 *   for (let read = decoder.next(); read.kind === "frame"; read = decoder.next()) handle(read.body);
 * });
 * ```
 */
export class FrameDecoder {
  #frameBytesMax: number;
  readonly #chunks: Uint8Array[] = [];
  /** Index in #chunks of the first chunk with unread bytes, and the offset of its first unread byte. */
  #head = 0;
  #offset = 0;
  #bufferedBytes = 0;
  /** Length of the frame whose header has been read, or -1 when the next bytes are a header. */
  #bodyLength = -1;
  #failed = false;

  constructor(options: { frameBytesMax: number }) {
    this.#frameBytesMax = checkFrameBytesMax(options.frameBytesMax);
  }

  /** The limit may change once, e.g. from the small pre-handshake limit to the session's. */
  set frameBytesMax(value: number) {
    this.#frameBytesMax = checkFrameBytesMax(value);
  }

  get frameBytesMax(): number {
    return this.#frameBytesMax;
  }

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Appends a chunk; the decoder keeps a reference to it (callers must not reuse it). */
  push(chunk: Uint8Array): void {
    assert(!this.#failed, "FrameDecoder used after an oversized frame");
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#bufferedBytes += chunk.length;
  }

  /** The next frame, `incomplete` until more bytes arrive, or `oversized` (then the stream is dead). */
  next(): FrameRead {
    if (this.#failed) return INCOMPLETE;
    if (this.#bodyLength < 0) {
      if (this.#bufferedBytes < FRAME_HEADER_BYTES) return INCOMPLETE;
      const header = this.#take(FRAME_HEADER_BYTES);
      const bodyLength =
        (((header[0] ?? 0) << 24) | ((header[1] ?? 0) << 16) | ((header[2] ?? 0) << 8) | (header[3] ?? 0)) >>>
        0;
      if (bodyLength > this.#frameBytesMax) {
        this.#failed = true;
        this.#release();
        return { kind: "oversized", lengthBytes: bodyLength, frameBytesMax: this.#frameBytesMax };
      }
      this.#bodyLength = bodyLength;
    }
    if (this.#bufferedBytes < this.#bodyLength) return INCOMPLETE;
    const body = this.#take(this.#bodyLength);
    this.#bodyLength = -1;
    return { kind: "frame", body };
  }

  /** Drops every buffered byte (after a fatal error, so that nothing is retained). */
  #release(): void {
    this.#chunks.length = 0;
    this.#head = 0;
    this.#offset = 0;
    this.#bufferedBytes = 0;
  }

  /** Removes `count` bytes from the front: a view when they lie in one chunk, else one copy. */
  #take(count: number): Uint8Array {
    assert(count <= this.#bufferedBytes, "take beyond the buffered bytes");
    this.#bufferedBytes -= count;
    const first = this.#chunks[this.#head];
    if (first === undefined) return new Uint8Array(0);
    if (first.length - this.#offset >= count) {
      const view = first.subarray(this.#offset, this.#offset + count);
      this.#advance(first, count);
      return view;
    }
    const assembled = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.#chunks[this.#head];
      assert(chunk !== undefined, "ran out of chunks while assembling a frame");
      const part = Math.min(chunk.length - this.#offset, count - filled);
      assembled.set(chunk.subarray(this.#offset, this.#offset + part), filled);
      filled += part;
      this.#advance(chunk, part);
    }
    return assembled;
  }

  #advance(chunk: Uint8Array, count: number): void {
    this.#offset += count;
    if (this.#offset < chunk.length) return;
    this.#offset = 0;
    this.#head += 1;
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= CONSUMED_CHUNKS_COMPACT_AT) {
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

function checkFrameBytesMax(value: number): number {
  assert(
    Number.isSafeInteger(value) && value > 0 && value <= FRAME_LENGTH_LIMIT,
    () => `frameBytesMax must be an integer in 1..${FRAME_LENGTH_LIMIT}, got ${value}`,
  );
  return value;
}

/**
 * The msgpack codec for frame bodies: records mode (objects of the same shape share their
 * key list inside a message), `moreTypes` so that a Uint8Array decodes as a Uint8Array, and
 * `copyBuffers` so that a decoded Buffer never keeps the whole received chunk alive. Every
 * message is self-describing (no structures shared between messages), so a receiver that
 * restarted decodes the next message without any state.
 */
const packr = new Packr({ useRecords: true, moreTypes: true, copyBuffers: true });

/** Why a body could not be encoded or decoded. */
export interface CodecError {
  readonly code: "CONCLAVE_FRAME_MALFORMED" | "CONCLAVE_MESSAGE_UNENCODABLE";
  readonly message: string;
}

/** A typed result: codec failures are expected outcomes with hostile or buggy peers. */
export type CodecResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: CodecError };

/**
 * Encodes a value. Returns an error instead of throwing (e.g. for a BigInt too large or a
 * function). The returned bytes stay valid: msgpackr never overwrites a returned buffer.
 */
export function encodeBody(value: unknown): CodecResult<Uint8Array> {
  try {
    return { ok: true, value: packr.pack(value) };
  } catch (error) {
    return { ok: false, error: { code: "CONCLAVE_MESSAGE_UNENCODABLE", message: describe(error) } };
  }
}

/**
 * Decodes exactly one msgpack value filling `body` (trailing bytes are an error). Never throws:
 * malformed, truncated or absurdly nested input (which overflows the stack) becomes an error.
 */
export function decodeBody(body: Uint8Array): CodecResult<unknown> {
  if (body.length === 0)
    return { ok: false, error: { code: "CONCLAVE_FRAME_MALFORMED", message: "empty body" } };
  try {
    return { ok: true, value: packr.unpack(body) };
  } catch (error) {
    return { ok: false, error: { code: "CONCLAVE_FRAME_MALFORMED", message: describe(error) } };
  }
}

function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  // msgpackr appends the partially decoded value to some messages: keep logs short and clean.
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
