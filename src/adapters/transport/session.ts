/**
 * The authenticated session after the handshake. Every frame body is
 *
 *   sequence (8 bytes, big-endian) ‖ tag (16 bytes) ‖ payload (msgpack)
 *
 * with tag = first 16 bytes of HMAC-SHA256(sessionKey, direction ‖ sequence ‖ payload).
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
import { FrameMac } from "./frame-mac.ts";

export const SEQUENCE_BYTES = 8;
export const TAG_BYTES = 16;
/** Bytes in front of the payload inside a session frame body. */
export const SESSION_HEADER_BYTES = SEQUENCE_BYTES + TAG_BYTES;
/** A session ends (the link reconnects) well before a sequence stops being an exact double. */
const SEQUENCE_MAX = Number.MAX_SAFE_INTEGER;

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
   * Returns the bytes to write before `payload`: the frame length prefix and the session header.
   * Writing the header and the payload separately (under `cork`) avoids copying large payloads.
   */
  sealHeader(payload: Uint8Array): Uint8Array {
    assert(this.#sequence < SEQUENCE_MAX, "session sequence exhausted");
    const header = new Uint8Array(FRAME_HEADER_BYTES + SESSION_HEADER_BYTES);
    writeFrameHeader(header, 0, SESSION_HEADER_BYTES + payload.length);
    const sequenceBytes = header.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + SEQUENCE_BYTES);
    writeSequence(sequenceBytes, this.#sequence);
    const tag = this.#mac.tag(this.#direction, sequenceBytes, payload);
    header.set(tag.subarray(0, TAG_BYTES), FRAME_HEADER_BYTES + SEQUENCE_BYTES);
    this.#sequence += 1;
    return header;
  }

  /** The whole frame (length prefix included) in one buffer: handy for tests and small payloads. */
  sealFrame(payload: Uint8Array): Uint8Array {
    const header = this.sealHeader(payload);
    const frame = new Uint8Array(header.length + payload.length);
    frame.set(header, 0);
    frame.set(payload, header.length);
    return frame;
  }
}

/** Why a received session frame was refused. Any of these closes the connection. */
export type OpenFailure = { readonly ok: false; readonly reason: string };

/** Verifies incoming frame bodies of one direction of one connection. */
export class SessionOpener {
  readonly #mac: FrameMac;
  readonly #direction: number;
  #expected = 0;

  constructor(sessionKey: KeyObject, direction: Direction) {
    this.#mac = new FrameMac(sessionKey);
    this.#direction = DIRECTION_BYTE[direction];
  }

  /** Checks a frame body (length prefix already removed) and returns its payload. */
  open(body: Uint8Array): { ok: true; payload: Uint8Array } | OpenFailure {
    if (body.length < SESSION_HEADER_BYTES)
      return { ok: false, reason: "session frame shorter than its header" };
    const sequenceBytes = body.subarray(0, SEQUENCE_BYTES);
    const tag = body.subarray(SEQUENCE_BYTES, SESSION_HEADER_BYTES);
    const payload = body.subarray(SESSION_HEADER_BYTES);
    const expectedTag = this.#mac.tag(this.#direction, sequenceBytes, payload).subarray(0, TAG_BYTES);
    if (!timingSafeEqual(expectedTag, tag))
      return { ok: false, reason: "bad frame tag (injected or tampered)" };
    const sequence = readSequence(sequenceBytes);
    if (sequence !== this.#expected) {
      const kind = sequence < this.#expected ? "replayed" : "reordered or skipped";
      return { ok: false, reason: `${kind} frame: sequence ${sequence}, expected ${this.#expected}` };
    }
    this.#expected += 1;
    return { ok: true, payload };
  }
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
