/**
 * Test fixtures for the TCP transport: a started cluster on 127.0.0.1 with ephemeral ports,
 * a raw peer that speaks (or abuses) the wire protocol over `net.connect`, and bounded waits.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, createServer, type Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import {
  decodeBody,
  encodeBody,
  encodeFrame,
  FrameDecoder,
} from "../../src/adapters/transport/frame-codec.ts";
import {
  answerChallenge,
  type CookieKey,
  createHello,
  deriveCookieKey,
  type Hello,
} from "../../src/adapters/transport/handshake.ts";
import { SessionSealer } from "../../src/adapters/transport/session.ts";
import { TcpTransport, type TcpTransportOptions } from "../../src/adapters/transport/tcp-transport.ts";
import type { PeerAddress, PeerEvent } from "../../src/ports/transport.ts";

export const CLUSTER_ID = "test-cluster";
export const COOKIE = randomBytes(32).toString("base64url");
export const WRONG_COOKIE = randomBytes(32).toString("base64url");

/** Node i of a test cluster is "n<i>" named "n<i>@127.0.0.1". */
export function nodeName(index: number): string {
  return `n${index}@127.0.0.1`;
}

export interface ReceivedMessage {
  readonly from: string;
  readonly message: unknown;
}

export interface TcpNode {
  readonly transport: TcpTransport;
  readonly address: PeerAddress;
  readonly received: ReceivedMessage[];
  readonly events: PeerEvent[];
}

export interface TcpCluster {
  readonly nodes: TcpNode[];
  readonly peers: PeerAddress[];
  stop(): Promise<void>;
}

type NodeOverrides = Partial<Omit<TcpTransportOptions, "self" | "listen">>;

/** Starts `count` transports that all know each other; `overrides(i)` changes node i's options. */
export async function startTcpCluster(
  count: number,
  overrides: (index: number) => NodeOverrides = () => ({}),
): Promise<TcpCluster> {
  const nodes: TcpNode[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const transport = new TcpTransport({
        self: { nodeId: `n${index}`, name: nodeName(index) },
        clusterId: CLUSTER_ID,
        cookie: COOKIE,
        listen: { host: "127.0.0.1", port: 0 },
        ...overrides(index),
      });
      const received: ReceivedMessage[] = [];
      const events: PeerEvent[] = [];
      transport.onMessage((from, message) => received.push({ from, message }));
      transport.onPeerEvent((event) => events.push(event));
      await transport.start();
      const port = transport.localAddress?.port ?? 0;
      const address = { nodeId: `n${index}`, name: nodeName(index), host: "127.0.0.1", port };
      nodes.push({ transport, address, received, events });
    }
  } catch (error) {
    await Promise.all(nodes.map((node) => node.transport.stop()));
    throw error;
  }
  const peers = nodes.map((node) => node.address);
  for (const node of nodes) node.transport.setPeers(peers);
  return {
    nodes,
    peers,
    stop: async () => void (await Promise.all(nodes.map((node) => node.transport.stop()))),
  };
}

/** Runs `body` with a started cluster and always stops it. */
export async function withTcpCluster(
  count: number,
  overrides: (index: number) => NodeOverrides,
  body: (cluster: TcpCluster) => Promise<void>,
): Promise<void> {
  const cluster = await startTcpCluster(count, overrides);
  try {
    await body(cluster);
  } finally {
    await cluster.stop();
  }
}

/** Polls `condition` until true; fails after `timeoutMs` naming `what`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

/** Sends from node `from` to node `to` and waits until it arrives: the honest path still works. */
export async function assertHonestDelivery(cluster: TcpCluster, from = 0, to = 1): Promise<void> {
  const sender = cluster.nodes[from];
  const receiver = cluster.nodes[to];
  if (sender === undefined || receiver === undefined) throw new Error("no such node");
  const marker = `honest-${randomBytes(4).toString("hex")}`;
  if (!sender.transport.send(receiver.address.nodeId, { marker })) throw new Error("honest send refused");
  await waitFor(
    () => receiver.received.some((entry) => (entry.message as { marker?: string }).marker === marker),
    "an honest message to arrive",
  );
}

/**
 * A hand-driven peer on a raw socket: the attacker in the attack tests (and an honest peer when
 * it completes the handshake, to inject raw frames into a live session).
 */
export class RawPeer {
  readonly socket: Socket;
  readonly receivedBytes: Buffer[] = [];
  readonly #decoder = new FrameDecoder({ frameBytesMax: 1 << 20 });
  readonly #frames: Uint8Array[] = [];
  #closed = false;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.receivedBytes.push(chunk);
      this.#decoder.push(chunk);
      for (let read = this.#decoder.next(); read.kind === "frame"; read = this.#decoder.next()) {
        this.#frames.push(read.body);
      }
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#closed = true;
        resolve();
      }),
    );
  }

  static async connect(port: number, localAddress = "127.0.0.1"): Promise<RawPeer> {
    const socket = connect({ host: "127.0.0.1", port, localAddress });
    const peer = new RawPeer(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
      socket.once("close", () => resolve());
    });
    return peer;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  get allReceived(): Buffer {
    return Buffer.concat(this.receivedBytes);
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Writes `value` as one msgpack frame. */
  writeMessage(value: unknown): void {
    const body = encodeBody(value);
    if (!body.ok) throw new Error(body.error.message);
    this.write(encodeFrame(body.value));
  }

  /** The next frame body the node sent us, or null if the connection closed first. */
  async nextFrame(timeoutMs = 2000): Promise<Uint8Array | null> {
    const deadline = performance.now() + timeoutMs;
    while (this.#frames.length === 0) {
      if (this.#closed) return null;
      if (performance.now() > deadline) throw new Error("no frame from the node in time");
      await delay(2);
    }
    return this.#frames.shift() ?? null;
  }

  /** Resolves when the node closes the connection; fails after `timeoutMs`. */
  async expectClosed(timeoutMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Completes an honest handshake as `fromName` with `cookie`; returns the sealer for the
   * session (frames we then write are checked by the node) and the hello we sent.
   */
  async authenticate(fields: { fromName: string; toName: string; cookie?: string }): Promise<{
    sealer: SessionSealer;
    hello: Hello;
  }> {
    const cookieKey: CookieKey = deriveCookieKey(fields.cookie ?? COOKIE);
    const hello = createHello({ clusterId: CLUSTER_ID, fromName: fields.fromName, toName: fields.toName });
    this.writeMessage(hello);
    const frame = await this.nextFrame();
    if (frame === null) throw new Error("closed before the challenge");
    const challenge = decodeBody(frame);
    if (!challenge.ok) throw new Error("malformed challenge");
    const answer = answerChallenge(cookieKey, hello, challenge.value);
    if (!answer.ok) throw new Error(`handshake failed: ${answer.reason}`);
    this.writeMessage(answer.proof);
    return { sealer: new SessionSealer(answer.sessionKey, "dialer-to-acceptor"), hello };
  }
}

/** A hello from `fromName` to node 1. */
export function helloTo1(fromName = nodeName(0)) {
  return createHello({ clusterId: CLUSTER_ID, fromName, toName: nodeName(1) });
}

/** A plain listener standing in for a rogue node or a proxy; `close` also destroys its sockets. */
export async function listenOnce(
  onConnection: (socket: Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert(address !== null && typeof address === "object");
  return {
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Points node 0's entry for `nodeId` at `port` (an attacker's listener). */
export function redirect(cluster: TcpCluster, nodeId: string, port: number): void {
  const node0 = cluster.nodes[0];
  assert(node0);
  node0.transport.setPeers(cluster.peers.map((peer) => (peer.nodeId === nodeId ? { ...peer, port } : peer)));
}

/** Reads framed msgpack values from a socket we accepted (the rogue side of a test). */
export class FramedSocket {
  readonly #socket: Socket;

  constructor(socket: Socket, onValue: (value: unknown) => void) {
    this.#socket = socket;
    let buffered = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
        const length = buffered.readUInt32BE(0);
        const decoded = decodeBody(buffered.subarray(4, 4 + length));
        buffered = buffered.subarray(4 + length);
        if (decoded.ok) onValue(decoded.value);
      }
    });
  }

  write(value: unknown): void {
    const encoded = encodeBody(value);
    assert(encoded.ok);
    this.#socket.write(encodeFrame(encoded.value));
  }

  /** Forwards `client` to 127.0.0.1:`port` both ways, recording what the client sends. */
  static pipe(client: Socket, port: number, record: (chunk: Buffer) => void): Socket {
    const upstream = new (client.constructor as typeof Socket)();
    upstream.connect(port, "127.0.0.1");
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    client.on("data", (chunk: Buffer) => {
      record(chunk);
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    upstream.on("close", () => client.destroy());
    return upstream;
  }
}
