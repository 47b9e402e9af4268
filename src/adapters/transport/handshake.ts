/**
 * The cookie handshake: a mutual challenge-response that proves on both sides that the peer
 * holds the cluster cookie, without ever sending it, and derives a per-connection session key.
 *
 *   dialer → acceptor   hello     { magic, version, clusterId, fromName, toName, nonceA }
 *   acceptor → dialer   challenge { nonceB, macB = HMAC(K, "conclave-v1|acceptor" ‖ T) }
 *   dialer → acceptor   proof     { macA = HMAC(K, "conclave-v1|dialer" ‖ T) }
 *   (on failure)        rejection { error: "auth failed" }, then close
 *
 * K is derived from the cookie with HKDF; T is the transcript (clusterId, fromName, toName,
 * nonceA, nonceB), each field length-prefixed so that no two transcripts encode alike. Both
 * nonces are fresh random 32-byte values, so a recorded handshake never verifies again; the
 * role label means an acceptor MAC is never a valid dialer MAC, so reflecting a node's own
 * challenge back to it fails. The acceptor answers an unknown name, a wrong cluster or a wrong
 * destination exactly as it answers a wrong MAC (a real challenge, then "auth failed" after the
 * proof), so a prober learns nothing about membership; only the local reason says which.
 *
 * Everything here is a pure function of its inputs (nonces can be injected), so it is tested
 * without sockets.
 */
import {
  createHmac,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { assertStrongCookie } from "../../config/cookie.ts";

export const PROTOCOL_MAGIC = "conclave";
/**
 * Members of different versions refuse each other. 2: the replicated database stores each KV
 * value once (src/adapters/sqlite/kv-schema.ts); a member of version 1 that installed such a
 * snapshot would read every value as empty, so it must not take one. 3: a session frame carries
 * the messages of one flush under one tag (src/adapters/transport/session.ts). 4: a KV put
 * command has a fixed binary layout (src/adapters/sqlite/put-layout.ts), which a member of
 * version 3 would apply as an invalid command.
 */
export const PROTOCOL_VERSION = 4;
export const NONCE_BYTES = 32;
export const HANDSHAKE_MAC_BYTES = 32;
/** The only thing a peer is ever told about why authentication failed. */
export const AUTH_FAILED = "auth failed";
/** Longest cluster id or node name accepted in a hello, in UTF-16 code units. */
export const NAME_LENGTH_MAX = 255;

const LABEL = "conclave-v1";

/** The secret key derived from the cookie (the cookie itself is not kept). */
export interface CookieKey {
  readonly key: KeyObject;
}

export interface Hello {
  readonly magic: string;
  readonly version: number;
  readonly clusterId: string;
  readonly fromName: string;
  readonly toName: string;
  readonly nonceA: Uint8Array;
}

export interface Challenge {
  readonly nonceB: Uint8Array;
  readonly macB: Uint8Array;
}

export interface Proof {
  readonly macA: Uint8Array;
}

export interface Rejection {
  readonly error: string;
}

/** What both sides MAC and derive the session key from. */
export interface Transcript {
  readonly clusterId: string;
  readonly fromName: string;
  readonly toName: string;
  readonly nonceA: Uint8Array;
  readonly nonceB: Uint8Array;
}

/** A failed step: `reason` is for the local log; the peer gets at most {@link AUTH_FAILED}. */
export type HandshakeFailure = {
  readonly ok: false;
  /** `protocol`: not our protocol at all (close silently); `version`: tell the peer; `auth`: "auth failed". */
  readonly kind: "protocol" | "version" | "auth";
  readonly reason: string;
};

/**
 * Derives the cookie key. Throws CONCLAVE_COOKIE_MISSING / CONCLAVE_COOKIE_WEAK (the rules of
 * src/config/cookie.ts: at least 128 bits, no well-known default) so that no transport ever
 * runs on a guessable secret.
 */
export function deriveCookieKey(cookie: string): CookieKey {
  assertStrongCookie(cookie, "the transport's cookie");
  const bytes = hkdfSync("sha256", Buffer.from(cookie, "utf8"), `${LABEL}|cookie`, `${LABEL}|cookie-key`, 32);
  return { key: createSecretKey(Buffer.from(bytes)) };
}

/** The dialer's first message. */
export function createHello(
  fields: { clusterId: string; fromName: string; toName: string },
  nonceA: Uint8Array = randomBytes(NONCE_BYTES),
): Hello {
  return { magic: PROTOCOL_MAGIC, version: PROTOCOL_VERSION, ...fields, nonceA: Uint8Array.from(nonceA) };
}

/** Validates the shape of a hello received from an unauthenticated peer. */
export function parseHello(value: unknown): { ok: true; hello: Hello } | HandshakeFailure {
  if (!isPlainObject(value) || value.magic !== PROTOCOL_MAGIC) {
    return { ok: false, kind: "protocol", reason: "first frame is not a conclave hello" };
  }
  if (value.version !== PROTOCOL_VERSION) {
    return { ok: false, kind: "version", reason: `peer speaks protocol version ${String(value.version)}` };
  }
  const { clusterId, fromName, toName, nonceA } = value;
  if (!isName(clusterId) || !isName(fromName) || !isName(toName) || !isBytes(nonceA, NONCE_BYTES)) {
    return { ok: false, kind: "protocol", reason: "malformed hello" };
  }
  return {
    ok: true,
    hello: { magic: PROTOCOL_MAGIC, version: PROTOCOL_VERSION, clusterId, fromName, toName, nonceA },
  };
}

/** The acceptor's state between its challenge and the dialer's proof. */
export interface AcceptorPending {
  readonly transcript: Transcript;
  /** Why this dialer will be refused whatever it proves, decided at hello time. */
  readonly refusal: string | undefined;
}

/**
 * The acceptor answers a parsed hello. `refuse` returns a local reason when the dialer may not
 * join (unknown name, not allowed by TLS...). A refused dialer still gets a real challenge and is
 * told "auth failed" only after its proof, exactly like a dialer with a wrong MAC.
 */
export function answerHello(
  cookieKey: CookieKey,
  local: { clusterId: string; name: string },
  hello: Hello,
  refuse: (fromName: string) => string | undefined,
  nonceB: Uint8Array = randomBytes(NONCE_BYTES),
): { challenge: Challenge; pending: AcceptorPending } {
  const transcript: Transcript = { ...pick(hello), nonceB: Uint8Array.from(nonceB) };
  let refusal: string | undefined;
  if (hello.clusterId !== local.clusterId) refusal = `wrong cluster id "${hello.clusterId}"`;
  else if (hello.toName !== local.name) refusal = `hello addressed to "${hello.toName}", not to us`;
  else refusal = refuse(hello.fromName);
  // A real MAC even for a refused dialer: it reveals nothing (the dialer chose only its own nonce
  // and the label makes it useless as a proof), keeps the wire identical in every case, and lets
  // an honest but refused member learn "auth failed" instead of "the peer lacks the cookie".
  const macB = handshakeMac(cookieKey, "acceptor", transcript);
  return { challenge: { nonceB: transcript.nonceB, macB }, pending: { transcript, refusal } };
}

/** The acceptor checks the dialer's proof; on success both sides now share `sessionKey`. */
export function verifyProof(
  cookieKey: CookieKey,
  pending: AcceptorPending,
  value: unknown,
): { ok: true; peerName: string; sessionKey: KeyObject } | HandshakeFailure {
  if (!isPlainObject(value) || !isBytes(value.macA, HANDSHAKE_MAC_BYTES)) {
    return { ok: false, kind: "protocol", reason: "malformed proof" };
  }
  const macOk = macEquals(handshakeMac(cookieKey, "dialer", pending.transcript), value.macA);
  if (pending.refusal !== undefined) return { ok: false, kind: "auth", reason: pending.refusal };
  if (!macOk) return { ok: false, kind: "auth", reason: "wrong proof: the dialer does not hold our cookie" };
  return {
    ok: true,
    peerName: pending.transcript.fromName,
    sessionKey: deriveSessionKey(cookieKey, pending.transcript),
  };
}

/** The dialer checks the acceptor's challenge and, when it proves the cookie, answers with its proof. */
export function answerChallenge(
  cookieKey: CookieKey,
  hello: Hello,
  value: unknown,
): { ok: true; proof: Proof; sessionKey: KeyObject } | HandshakeFailure {
  if (isPlainObject(value) && typeof value.error === "string") {
    return { ok: false, kind: "auth", reason: `peer refused us: ${value.error.slice(0, NAME_LENGTH_MAX)}` };
  }
  if (
    !isPlainObject(value) ||
    !isBytes(value.nonceB, NONCE_BYTES) ||
    !isBytes(value.macB, HANDSHAKE_MAC_BYTES)
  ) {
    return { ok: false, kind: "protocol", reason: "malformed challenge" };
  }
  const transcript: Transcript = { ...pick(hello), nonceB: value.nonceB };
  if (!macEquals(handshakeMac(cookieKey, "acceptor", transcript), value.macB)) {
    return { ok: false, kind: "auth", reason: "wrong challenge MAC: the peer does not hold our cookie" };
  }
  return {
    ok: true,
    proof: { macA: handshakeMac(cookieKey, "dialer", transcript) },
    sessionKey: deriveSessionKey(cookieKey, transcript),
  };
}

/** HMAC-SHA256 over the role label and the length-prefixed transcript. */
export function handshakeMac(
  cookieKey: CookieKey,
  role: "acceptor" | "dialer",
  transcript: Transcript,
): Uint8Array {
  return new Uint8Array(
    createHmac("sha256", cookieKey.key).update(encodeTranscript(role, transcript)).digest(),
  );
}

/** The session key: HKDF of the cookie key, salted with both nonces, bound to the whole transcript. */
export function deriveSessionKey(cookieKey: CookieKey, transcript: Transcript): KeyObject {
  const salt = Buffer.concat([transcript.nonceA, transcript.nonceB]);
  const info = encodeTranscript("session", transcript);
  return createSecretKey(Buffer.from(hkdfSync("sha256", cookieKey.key, salt, info, 32)));
}

function encodeTranscript(role: string, transcript: Transcript): Buffer {
  const fields = [
    Buffer.from(`${LABEL}|${role}`),
    Buffer.from(transcript.clusterId),
    Buffer.from(transcript.fromName),
    Buffer.from(transcript.toName),
    transcript.nonceA,
    transcript.nonceB,
  ];
  const parts: Uint8Array[] = [];
  for (const field of fields) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(field.length);
    parts.push(length, field);
  }
  return Buffer.concat(parts);
}

function macEquals(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}

function pick(hello: Hello): Omit<Transcript, "nonceB"> {
  return { clusterId: hello.clusterId, fromName: hello.fromName, toName: hello.toName, nonceA: hello.nonceA };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= NAME_LENGTH_MAX;
}

function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length === length;
}
