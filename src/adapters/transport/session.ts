/**
 * The authenticated session after the handshake. Every frame body is
 *
 *   sequence (8 bytes, big-endian) ‖ tag (16 bytes) ‖ parts
 *   parts = (length (4 bytes, big-endian) ‖ payload (msgpack))+
 *
 * with tag = first 16 bytes of HMAC-SHA256(sessionKey, direction ‖ sequence ‖ parts). One frame
 * carries every message one flush writes (up to ~64 KiB; a large message has a frame of its
 * own), so one tag covers them all: a tag costs two SHA-256 calls whatever the size (~5 µs),
 * which was 4–6 % of a member's busy time at one tag per message (protocol version 3).
 * Sequences count per direction from 0, strictly +1, so an injected frame (bad tag), a
 * tampered one (bad tag), a replayed one (sequence already seen) or a reordered one (sequence
 * ahead of the expected one) is detected and the connection closed. The session key is fresh
 * per connection, so frames recorded from one connection never verify on another. This holds
 * on plain TCP; with TLS it is a second, cheap layer. The payload is not encrypted: use TLS
 * when messages must be confidential.
 */
import { type KeyObject, timingSafeEqual } from "node:crypto";
import { assert } from "../../lib/assert.ts";
import { FRAME_HEADER_BYTES, writeFrameHeader } from "./frame-codec.ts";
import { FrameMac, MAC_RESERVED_BYTES, ONE_SHOT_PAYLOAD_BYTES_MAX } from "./frame-mac.ts";

export const SEQUENCE_BYTES = 8;
export const TAG_BYTES = 16;
/** Bytes in front of the parts inside a session frame body. */
export const SESSION_HEADER_BYTES = SEQUENCE_BYTES + TAG_BYTES;
/** Bytes in front of each message inside the parts (its length). */
export const PART_HEADER_BYTES = 4;
/** A session ends (the link reconnects) well before a sequence stops being an exact double. */
const SEQUENCE_MAX = Number.MAX_SAFE_INTEGER;
/** In the buffer a group is tagged in: the MAC's reserved block, the direction, the sequence. */
const TAGGED_PREFIX_BYTES = MAC_RESERVED_BYTES + 1 + SEQUENCE_BYTES;

/** Which way a frame travels; part of every tag, so a frame cannot be bounced back. */
export type Direction = "dialer-to-acceptor" | "acceptor-to-dialer";

const DIRECTION_BYTE: Record<Direction, number> = { "dialer-to-acceptor": 0x01, "acceptor-to-dialer": 0x02 };

/** Seals outgoing payloads of one direction of one connection. */
export class SessionSealer {
  readonly #mac: FrameMac;
  readonly #direction: number;
  #sequence = 0;

  constructor(sessionKey: KeyObject, direction: Direction) {
    this.#mac = new FrameMac(sessionKey);
    this.#direction = DIRECTION_BYTE[direction];
  }

  /** The sequence the next frame will carry. */
  get nextSequence(): number {
    return this.#sequence;
  }

  /**
   * Seals `payloads` (one or more, non-empty) into one frame and returns the buffers to write,
   * in order: the length prefix and session header, then the parts. Small payloads are copied
   * once, into the buffer they are tagged and written from; a single payload above 16 KiB is
   * written as it is (tagged with a streaming HMAC) to avoid copying it. The caller keeps the
   * frame within the peer's `frameBytesMax`: the session header and each part's length count.
   */
  seal(payloads: readonly Uint8Array[]): Uint8Array[] {
    assert(this.#sequence < SEQUENCE_MAX, "session sequence exhausted");
    assert(payloads.length > 0, "a frame holds at least one message");
    let partsBytes = 0;
    for (const payload of payloads) {
      assert(payload.length > 0, "an empty message");
      partsBytes += PART_HEADER_BYTES + payload.length;
    }
    // From Buffer's pool: a small Uint8Array of its own gets a backing store outside V8's heap
    // as soon as it is subarrayed or written to the socket (~0.7 µs).
    const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES + SESSION_HEADER_BYTES);
    writeFrameHeader(header, 0, SESSION_HEADER_BYTES + partsBytes);
    const sequenceBytes = header.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + SEQUENCE_BYTES);
    writeSequence(sequenceBytes, this.#sequence);
    this.#sequence += 1;
    const tagAt = FRAME_HEADER_BYTES + SEQUENCE_BYTES;
    const single = payloads[0] as Uint8Array;
    if (payloads.length === 1 && single.length > ONE_SHOT_PAYLOAD_BYTES_MAX) {
      const partHeader = Buffer.allocUnsafe(PART_HEADER_BYTES);
      partHeader.writeUInt32BE(single.length, 0);
      const tag = this.#mac.tagChunks([new Uint8Array([this.#direction]), sequenceBytes, partHeader, single]);
      header.write(tag, tagAt, TAG_BYTES, "latin1");
      return [header, partHeader, single];
    }
    const tagged = Buffer.allocUnsafe(TAGGED_PREFIX_BYTES + partsBytes);
    tagged[MAC_RESERVED_BYTES] = this.#direction;
    tagged.set(sequenceBytes, MAC_RESERVED_BYTES + 1);
    let at = TAGGED_PREFIX_BYTES;
    for (const payload of payloads) {
      tagged.writeUInt32BE(payload.length, at);
      tagged.set(payload, at + PART_HEADER_BYTES);
      at += PART_HEADER_BYTES + payload.length;
    }
    header.write(this.#mac.tagReserved(tagged), tagAt, TAG_BYTES, "latin1");
    return [header, tagged.subarray(TAGGED_PREFIX_BYTES)];
  }

  /** One frame of one payload (length prefix included) in one buffer: handy for tests. */
  sealFrame(payload: Uint8Array): Uint8Array {
    return Buffer.concat(this.seal([payload]));
  }
}

/** Why a received session frame was refused. Any of these closes the connection. */
export type OpenFailure = { readonly ok: false; readonly reason: string };

/** Verifies incoming frame bodies of one direction of one connection. */
export class SessionOpener {
  readonly #mac: FrameMac;
  readonly #direction: number;
  #expected = 0;
  /** The tag a frame must carry, written here for each frame (no allocation per frame). */
  readonly #expectedTag = Buffer.alloc(TAG_BYTES);

  constructor(sessionKey: KeyObject, direction: Direction) {
    this.#mac = new FrameMac(sessionKey);
    this.#direction = DIRECTION_BYTE[direction];
  }

  /** Checks a frame body (length prefix already removed) and returns its messages' payloads. */
  open(body: Uint8Array): { ok: true; payloads: Uint8Array[] } | OpenFailure {
    if (body.length < SESSION_HEADER_BYTES)
      return { ok: false, reason: "session frame shorter than its header" };
    const sequenceBytes = body.subarray(0, SEQUENCE_BYTES);
    const tag = body.subarray(SEQUENCE_BYTES, SESSION_HEADER_BYTES);
    const parts = body.subarray(SESSION_HEADER_BYTES);
    this.#expectedTag.write(this.#mac.tag(this.#direction, sequenceBytes, parts), 0, TAG_BYTES, "latin1");
    if (!timingSafeEqual(this.#expectedTag, tag))
      return { ok: false, reason: "bad frame tag (injected or tampered)" };
    const sequence = readSequence(sequenceBytes);
    if (sequence !== this.#expected) {
      const kind = sequence < this.#expected ? "replayed" : "reordered or skipped";
      return { ok: false, reason: `${kind} frame: sequence ${sequence}, expected ${this.#expected}` };
    }
    this.#expected += 1;
    return splitParts(parts);
  }
}

/**
 * The payloads of an authenticated frame's parts. A bad length here comes from a peer holding
 * the session key, i.e. a bug, not an attack; it still closes the connection rather than guess.
 */
function splitParts(parts: Uint8Array): { ok: true; payloads: Uint8Array[] } | OpenFailure {
  const view = new DataView(parts.buffer, parts.byteOffset, parts.byteLength);
  const payloads: Uint8Array[] = [];
  let at = 0;
  while (at < parts.length) {
    if (parts.length - at < PART_HEADER_BYTES) {
      return { ok: false, reason: `truncated message length at byte ${at} of the frame's messages` };
    }
    const length = view.getUint32(at);
    const start = at + PART_HEADER_BYTES;
    if (length === 0 || length > parts.length - start) {
      return { ok: false, reason: `message length ${length} at byte ${at} does not fit the frame` };
    }
    payloads.push(parts.subarray(start, start + length));
    at = start + length;
  }
  if (payloads.length === 0) return { ok: false, reason: "session frame without a message" };
  return { ok: true, payloads };
}

function writeSequence(target: Uint8Array, sequence: number): void {
  const view = new DataView(target.buffer, target.byteOffset, SEQUENCE_BYTES);
  view.setUint32(0, Math.floor(sequence / 0x1_0000_0000));
  view.setUint32(4, sequence >>> 0);
}

function readSequence(source: Uint8Array): number {
  const view = new DataView(source.buffer, source.byteOffset, SEQUENCE_BYTES);
  return view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
}
