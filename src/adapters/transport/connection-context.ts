/**
 * What the outbound links and inbound connections of one TCP transport share: who we are, the
 * cookie key, the limits, the counters and the event sink. Also the small framing steps both
 * sides of the handshake use.
 */
import type { Socket } from "node:net";
import type { SecureContext } from "node:tls";
import { assert } from "../../lib/assert.ts";
import type { PeerEvent, TransportStats } from "../../ports/transport.ts";
import { decodeBody, encodeBody, encodeFrame, type FrameDecoder } from "./frame-codec.ts";
import type { CookieKey } from "./handshake.ts";

/** Largest frame accepted before authentication: a hello is well under 1 KiB. */
export const HANDSHAKE_FRAME_BYTES_MAX = 4096;

/** Limits, all resolved to numbers. */
export interface TransportSettings {
  readonly frameBytesMax: number;
  readonly handshakeTimeoutMs: number;
  readonly sendQueueMessagesMax: number;
  readonly sendQueueBytesMax: number;
  readonly reconnectDelayMsMin: number;
  readonly reconnectDelayMsMax: number;
  /** Silence of a peer we keep sending to after which its link is redialed (tcp-transport.ts). */
  readonly peerSilenceMsMax: number;
  /** Bytes handed to a socket and not yet flushed to the kernel before we wait for `drain`. */
  readonly socketBufferBytesMax: number;
}

/** The counters, writable by the connections. */
export type MutableStats = { -readonly [K in keyof TransportStats]: TransportStats[K] };

export function emptyStats(): MutableStats {
  return {
    messagesOut: 0,
    framesOut: 0,
    messagesIn: 0,
    bytesOut: 0,
    bytesIn: 0,
    messagesDropped: 0,
    authFailures: 0,
    protocolErrors: 0,
    connectionsRejected: 0,
    handshakeTimeouts: 0,
    stalledLinksReset: 0,
  };
}

export interface ConnectionContext {
  readonly self: { readonly nodeId: string; readonly name: string };
  readonly clusterId: string;
  readonly cookieKey: CookieKey;
  readonly settings: TransportSettings;
  /** With TLS: the parsed client context used to dial. */
  readonly clientTls: SecureContext | undefined;
  /** Set when inbound connections use TLS. */
  readonly serverTls: { readonly requireClientCert: boolean } | undefined;
  readonly stats: MutableStats;
  emit(event: PeerEvent): void;
}

/** Writes one handshake message as a frame. */
export function writeHandshakeMessage(socket: Socket, value: unknown, stats: MutableStats): void {
  const body = encodeBody(value);
  assert(body.ok, "handshake messages are always encodable");
  const frame = encodeFrame(body.value);
  stats.bytesOut += frame.length;
  socket.write(frame);
}

/** Resolves once `socket` has emitted `close` (at once when there is none or it already closed). */
export function socketClosed(socket: Socket | null): Promise<void> {
  if (socket === null || socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

/** The next handshake message from the decoder: none yet, a decoded value, or why the bytes are garbage. */
export function readHandshakeMessage(
  decoder: FrameDecoder,
): { kind: "none" } | { kind: "value"; value: unknown } | { kind: "garbage"; reason: string } {
  const read = decoder.next();
  if (read.kind === "incomplete") return { kind: "none" };
  if (read.kind === "oversized") {
    return {
      kind: "garbage",
      reason: `handshake frame of ${read.lengthBytes} bytes (limit ${read.frameBytesMax})`,
    };
  }
  const decoded = decodeBody(read.body);
  if (!decoded.ok) return { kind: "garbage", reason: `malformed handshake frame: ${decoded.error.message}` };
  return { kind: "value", value: decoded.value };
}
