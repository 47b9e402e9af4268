/**
 * The composition root: the only file that picks concrete adapters. `createNode(config)` wires a
 * Conclave node — file storage in `node.data_dir`, the TCP transport to the static member list,
 * the timing profile, the key-value state machine, pino logging, the node identity and the cookie
 * checks — around a {@link RaftRuntime}, plus a small HTTP server (health, status, key-value).
 *
 * @example
 * ```ts
 * const node = await createNode(await loadConfig({ file: "conclave.toml" }));
 * node.on("fatal", () => process.exit(1));
 * await node.start();
 * // … SIGTERM:
 * await node.stop();
 * ```
 */
import { randomInt } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { pino } from "pino";
import {
  encodeKvCommand,
  type KvCommand,
  KvStateMachine,
  kvKeyProblem,
  kvValueBytesMax,
} from "./adapters/state-machine/kv-state-machine.ts";
import { acquireDataDirLock, type DataDirLock } from "./adapters/storage/data-dir-lock.ts";
import { createFileStorage } from "./adapters/storage/file-storage.ts";
import { MemoryNetwork, MemoryTransport } from "./adapters/transport/memory-transport.ts";
import { TcpTransport } from "./adapters/transport/tcp-transport.ts";
import type { TransportTlsOptions } from "./adapters/transport/tls-identity.ts";
import { resolveClusterCookie } from "./config/cookie.ts";
import type { NodeConfig } from "./config/node-config.ts";
import { type NodeIdentity, openNodeIdentity, recordClusterId } from "./config/node-identity.ts";
import { parseNodeName } from "./config/node-name.ts";
import { type TimingProfile, timingProfile } from "./config/timing.ts";
import { ConclaveError, isConclaveError } from "./lib/errors.ts";
import { Prng } from "./lib/prng.ts";
import type { Clock } from "./ports/clock.ts";
import type { Logger } from "./ports/logger.ts";
import type { PeerAddress, PeerEvent, Transport } from "./ports/transport.ts";
import type { Membership, RaftStatus } from "./raft/index.ts";
import { RaftRuntime } from "./runtime/raft-runtime.ts";
import type { RuntimeEvents } from "./runtime/runtime-events.ts";

/** The cluster id used on the wire when neither the configuration nor the data directory names one. */
const clusterIdDefault = "conclave";
/** Raft id of a standalone node started without a name. */
const standaloneIdDefault = "standalone";

/** Options of {@link createNode} beyond the configuration. */
export interface NodeOptions {
  /** Where JSON log lines go (default: stdout). */
  readonly logDestination?: NodeJS.WritableStream;
  /** Overrides the timing profile's tick interval (tests). */
  readonly tickIntervalMs?: number;
}

/** A running Conclave node. */
export interface ConclaveNode {
  /** `name@host`, or the standalone id. */
  readonly nodeName: string;
  /** The Raft id: the short name (the part before `@`). */
  readonly raftId: string;
  /** The permanent node id of the data directory. */
  readonly nodeId: string;
  readonly runtime: RaftRuntime;
  /** The key-value state machine (read locally after `runtime.readIndex()`). */
  readonly kv: KvStateMachine;
  /** Where the HTTP server listens, once started. */
  readonly httpAddress: { readonly host: string; readonly port: number } | null;
  start(): Promise<void>;
  /** Finishes the in-flight sync, closes HTTP, transport and storage. Idempotent. */
  stop(): Promise<void>;
  status(): NodeStatus;
  on<K extends keyof RuntimeEvents>(name: K, listener: (event: RuntimeEvents[K]) => void): () => void;
}

/** What `GET /v1/status` shows. */
export interface NodeStatus {
  readonly node: string;
  readonly id: string;
  readonly raftId: string;
  /** PRIMARY, SECONDARY, CANDIDATE, STANDBY (not a member of a cluster yet) or DOWN (stopped). */
  readonly state: string;
  readonly role: RaftStatus["role"];
  readonly term: number;
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly membership: Membership;
}

const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => {
    const timer = setTimeout(callback, delayMs);
    timer.unref(); // the listening sockets keep the process alive, not the timers
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * Checks the configuration against the data directory (identity, cookie, cluster id) and wires a
 * node; nothing listens until `start()`.
 *
 * @throws ConclaveError `CONCLAVE_IDENTITY_MISMATCH`, `CONCLAVE_CLUSTER_MISMATCH`, cookie and config errors
 */
export async function createNode(config: NodeConfig, options: NodeOptions = {}): Promise<ConclaveNode> {
  const clustered = config.cluster.mode === "cluster";
  const cookie = await resolveClusterCookie(config.cluster);
  if (clustered && cookie === undefined) {
    throw new ConclaveError(
      "CONCLAVE_COOKIE_MISSING",
      "cluster mode needs cluster.cookie or cluster.cookie_file",
    );
  }
  const raftId = shortNameOf(config.node.name);
  const self = config.cluster.members.find((member) => member.name === raftId);
  const nodeName = self?.nodeName ?? config.node.name ?? raftId;
  const { identity } = await openNodeIdentity({ dataDir: config.node.dataDir, nodeName: config.node.name });
  // One process per data directory; released by stop(), or right here if wiring fails.
  const lock = acquireDataDirLock(config.node.dataDir);
  try {
    return await wireNode(config, options, { cookie, raftId, nodeName, identity, lock });
  } catch (error) {
    lock.release();
    throw error;
  }
}

async function wireNode(
  config: NodeConfig,
  options: NodeOptions,
  parts: {
    cookie: string | undefined;
    raftId: string;
    nodeName: string;
    identity: NodeIdentity;
    lock: DataDirLock;
  },
): Promise<ConclaveNode> {
  const { cookie, raftId, nodeName, identity, lock } = parts;
  const clustered = config.cluster.mode === "cluster";
  const clusterId = config.cluster.id ?? identity.clusterId ?? clusterIdDefault;
  if (config.cluster.id !== undefined) await recordClusterId(config.node.dataDir, config.cluster.id);
  const logger = pino(
    { level: config.log.level, base: { node: nodeName } },
    options.logDestination ?? pino.destination({ dest: 1, sync: true }),
  );
  const transport = clustered
    ? await clusterTransport(config, { raftId, nodeName, clusterId, cookie: cookie as string }, logger)
    : new MemoryTransport(new MemoryNetwork(), { self: { nodeId: raftId, name: nodeName } });
  const timing = timingProfile(config.cluster.timing);
  const kv = new KvStateMachine();
  const runtime = new RaftRuntime({
    id: raftId,
    storage: createFileStorage(config.node.dataDir),
    transport,
    stateMachine: kv,
    clock: systemClock,
    logger,
    prng: new Prng(randomInt(2 ** 31)),
    ...raftTiming(timing, options.tickIntervalMs),
    bootstrap: bootstrapMembership(config, raftId),
    callTimeoutMsDefault: config.cluster.syncTimeoutMs,
  });
  return new Node({ config, nodeName, raftId, nodeId: identity.nodeId, runtime, kv, logger, lock });
}

/** The profile's election timeout range [min, max] in ticks becomes the core's T and jitter. */
function raftTiming(
  timing: TimingProfile,
  tickIntervalMs: number | undefined,
): {
  tickIntervalMs: number;
  electionTimeoutTicks: number;
  electionJitterTicks: number;
  heartbeatTicks: number;
} {
  return {
    tickIntervalMs: tickIntervalMs ?? timing.tickIntervalMs,
    electionTimeoutTicks: timing.electionTimeoutTicksMin,
    electionJitterTicks: timing.electionTimeoutTicksMax - timing.electionTimeoutTicksMin + 1,
    heartbeatTicks: timing.heartbeatTicks,
  };
}

function shortNameOf(name: string | undefined): string {
  if (name === undefined) return standaloneIdDefault;
  const parsed = parseNodeName(name);
  if (!parsed.ok) throw new ConclaveError("CONCLAVE_CONFIG_INVALID", `node.name: ${parsed.message}`);
  return parsed.value.name;
}

/**
 * The founding membership when this node's storage is empty: every member of the static list
 * bootstraps with the same voters in the same (listed) order, so that they form one cluster; a
 * node with `cluster.bootstrap` and no list founds a one-node cluster; otherwise none (standby).
 */
function bootstrapMembership(config: NodeConfig, raftId: string): Membership | null {
  if (config.cluster.mode === "standalone") return { voters: [raftId], learners: [] };
  const members = config.cluster.members;
  if (members.some((member) => member.name === raftId)) {
    return { voters: members.map((member) => member.name), learners: [] };
  }
  if (members.length === 0 && config.cluster.bootstrap) return { voters: [raftId], learners: [] };
  return null;
}

async function clusterTransport(
  config: NodeConfig,
  self: { raftId: string; nodeName: string; clusterId: string; cookie: string },
  logger: Logger,
): Promise<Transport> {
  const transport = new TcpTransport({
    self: { nodeId: self.raftId, name: self.nodeName },
    clusterId: self.clusterId,
    cookie: self.cookie,
    listen: { host: config.cluster.bind, port: config.cluster.port },
    ...(config.tls.enabled ? { tls: await transportTls(config) } : {}),
  });
  const peers: PeerAddress[] = config.cluster.members.map((member) => ({
    nodeId: member.name,
    name: member.nodeName,
    host: member.host,
    port: member.port,
  }));
  transport.setPeers(peers);
  transport.onPeerEvent(peerEventLogger(logger));
  return transport;
}

/** Repeated peer events (a peer retrying with a wrong cookie) are logged once per this interval. */
const peerEventLogIntervalMs = 30_000;

/** Logs peer events, at most one per peer and kind per interval (with a count of those skipped). */
function peerEventLogger(logger: Logger): (event: PeerEvent) => void {
  const last = new Map<string, { atMs: number; skipped: number }>();
  return (event) => {
    const key = `${event.type}|${event.direction}|${event.peer}`;
    const now = performance.now();
    const previous = last.get(key);
    if (
      previous !== undefined &&
      now - previous.atMs < peerEventLogIntervalMs &&
      event.type !== "connected"
    ) {
      previous.skipped++;
      return;
    }
    if (last.size > 10_000) last.clear(); // bounded: peers are few, remote addresses may not be
    last.set(key, { atMs: now, skipped: 0 });
    const fields = {
      peer: event.peer,
      direction: event.direction,
      reason: event.reason,
      repeatsNotLogged: previous?.skipped ?? 0,
    };
    if (event.type === "auth-failed")
      logger.warn(fields, "cluster connection refused: authentication failed");
    else logger.info(fields, `cluster peer ${event.type}`);
  };
}

async function transportTls(config: NodeConfig): Promise<TransportTlsOptions> {
  const { cert, key, ca } = config.tls;
  if (cert === undefined || key === undefined || ca === undefined) {
    throw new ConclaveError(
      "CONCLAVE_CONFIG_INVALID",
      "tls.enabled needs tls.cert, tls.key and tls.ca (the CA that signed every member's certificate).",
    );
  }
  const read = async (what: string, path: string): Promise<Buffer> =>
    readFile(path).catch((error: unknown) => {
      throw new ConclaveError("CONCLAVE_CONFIG_INVALID", `Cannot read ${what} ${path}: ${String(error)}.`);
    });
  return {
    cert: await read("tls.cert", cert),
    key: await read("tls.key", key),
    ca: await read("tls.ca", ca),
    requireClientCert: config.tls.requireClientCert,
  };
}

class Node implements ConclaveNode {
  readonly nodeName: string;
  readonly raftId: string;
  readonly nodeId: string;
  readonly runtime: RaftRuntime;
  readonly kv: KvStateMachine;
  readonly #config: NodeConfig;
  readonly #logger: pino.Logger;
  readonly #lock: DataDirLock;
  #server: Server | null = null;
  #state: "new" | "started" | "stopped" = "new";

  constructor(parts: {
    config: NodeConfig;
    nodeName: string;
    raftId: string;
    nodeId: string;
    runtime: RaftRuntime;
    kv: KvStateMachine;
    logger: pino.Logger;
    lock: DataDirLock;
  }) {
    this.#lock = parts.lock;
    this.#config = parts.config;
    this.nodeName = parts.nodeName;
    this.raftId = parts.raftId;
    this.nodeId = parts.nodeId;
    this.runtime = parts.runtime;
    this.kv = parts.kv;
    this.#logger = parts.logger;
  }

  get httpAddress(): { host: string; port: number } | null {
    const address = this.#server?.address();
    return address && typeof address === "object" ? { host: address.address, port: address.port } : null;
  }

  on<K extends keyof RuntimeEvents>(name: K, listener: (event: RuntimeEvents[K]) => void): () => void {
    return this.runtime.on(name, listener);
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new ConclaveError("CONCLAVE_NODE_STATE", "a node starts once");
    this.#state = "started";
    try {
      await this.runtime.start();
      const { bind, port } = this.#config.http;
      this.#server = await startHttpServer(this, { host: bind, port }, this.#logger);
      this.#logger.info(
        { http: `${bind}:${port}`, cluster: `${this.#config.cluster.bind}:${this.#config.cluster.port}` },
        "node is up",
      );
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    if (this.#server !== null) await stopHttpServer(this.#server);
    this.#server = null;
    await this.runtime.stop();
    this.#lock.release();
    this.#logger.info({}, "node stopped");
    this.#logger.flush();
  }

  /** The `name@host` of a member by its Raft id, or null when unknown. */
  memberAddress(raftId: string | null): string | null {
    return this.#config.cluster.members.find((member) => member.name === raftId)?.nodeName ?? null;
  }

  status(): NodeStatus {
    const raft = this.runtime.status();
    return {
      node: this.nodeName,
      id: this.nodeId,
      raftId: this.raftId,
      state: nodeState(raft, this.raftId, this.runtime.running),
      role: raft.role,
      term: raft.term,
      leader: raft.leader,
      commit: raft.commit,
      applied: raft.applied,
      lastIndex: raft.lastIndex,
      membership: raft.membership,
    };
  }
}

function nodeState(raft: RaftStatus, raftId: string, running: boolean): string {
  if (!running) return "DOWN";
  const member = raft.membership.voters.includes(raftId) || raft.membership.learners.includes(raftId);
  if (!member) return "STANDBY";
  if (raft.role === "leader") return "PRIMARY";
  return raft.role === "follower" ? "SECONDARY" : "CANDIDATE";
}

// ------------------------------------------------------------------ HTTP (moves to src/admin with the API issue)

/** Largest request body read (a key-value value). */
const requestBodyBytesMax = kvValueBytesMax;

class HttpFailure extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, body: Record<string, unknown>) {
    super(String(body.error));
    this.status = status;
    this.body = body;
  }
}

function startHttpServer(
  node: Node,
  listen: { host: string; port: number },
  logger: Logger,
): Promise<Server> {
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (request, response) => {
    handleRequest(node, request, response).catch((error: unknown) => {
      const failure = httpFailure(error);
      if (failure.status >= 500 && !(error instanceof HttpFailure))
        logger.warn({ error: String(error) }, "HTTP request failed");
      sendJson(response, failure.status, failure.body);
    });
  });
  server.maxHeadersCount = 64;
  return new Promise((resolve, reject) => {
    server.once("error", (error) => {
      reject(
        new ConclaveError(
          "CONCLAVE_HTTP_LISTEN_FAILED",
          `Cannot listen for HTTP on ${listen.host}:${listen.port} (${(error as NodeJS.ErrnoException).code ?? String(error)}); pick a free port (http.port) or address (http.bind).`,
        ),
      );
    });
    server.listen(listen.port, listen.host, () => {
      server.removeAllListeners("error");
      server.on("error", (error) => logger.warn({ error: String(error) }, "HTTP server error"));
      resolve(server);
    });
  });
}

function stopHttpServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function handleRequest(node: Node, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? "/", "http://node.invalid");
  const path = url.pathname;
  const method = request.method ?? "GET";
  if (path === "/health/live") return sendJson(response, 200, { status: "ok" });
  if (path === "/v1/status") {
    if (method !== "GET") throw new HttpFailure(405, { error: "use GET" });
    return sendJson(response, 200, { ...node.status() });
  }
  if (!path.startsWith("/v1/kv/")) throw new HttpFailure(404, { error: `no route ${path}` });
  const key = decodeKey(path.slice("/v1/kv/".length));
  if (method === "GET") {
    // "local" (rqlite's "none"): this node's state machine as is, possibly stale, on any member.
    const consistency = url.searchParams.get("consistency") ?? "linearizable";
    if (consistency !== "linearizable" && consistency !== "local")
      throw new HttpFailure(400, { error: 'consistency must be "linearizable" (default) or "local"' });
    if (consistency === "linearizable")
      await node.runtime.readIndex().catch((error: unknown) => rethrowForHttp(node, error));
    const value = node.kv.read(key);
    if (value === null) throw new HttpFailure(404, { error: `no key ${key}` });
    response.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": value.byteLength,
    });
    response.end(value);
    return;
  }
  let command: KvCommand;
  if (method === "PUT") command = { op: "put", key, value: await readBody(request) };
  else if (method === "DELETE") command = { op: "delete", key };
  else throw new HttpFailure(405, { error: "use GET, PUT or DELETE" });
  const outcome = await node.runtime
    .propose(encodeKvCommand(command))
    .catch((error: unknown) => rethrowForHttp(node, error));
  sendJson(response, 200, { index: outcome.index, term: outcome.term, result: outcome.result });
}

function decodeKey(encoded: string): string {
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch {
    throw new HttpFailure(400, { error: "the key is not valid percent-encoding" });
  }
  const problem = kvKeyProblem(key);
  if (problem !== null) throw new HttpFailure(400, { error: problem });
  return key;
}

async function readBody(request: IncomingMessage): Promise<Uint8Array> {
  const tooLarge = new HttpFailure(413, { error: `the body is larger than ${requestBodyBytesMax} bytes` });
  if (Number(request.headers["content-length"] ?? 0) > requestBodyBytesMax) {
    request.resume();
    throw tooLarge;
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    bytes += chunk.byteLength;
    if (bytes > requestBodyBytesMax) {
      request.resume();
      throw tooLarge;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Maps the runtime's typed failures to HTTP: 421 names the primary. */
function rethrowForHttp(node: Node, error: unknown): never {
  if (!isConclaveError(error)) throw error;
  const body: Record<string, unknown> = { error: error.message, code: error.code };
  if (error.code === "CONCLAVE_NOT_PRIMARY") {
    const leader = (error.details.leader as string | null) ?? node.runtime.status().leader;
    const member = node.memberAddress(leader);
    throw new HttpFailure(leader === null ? 503 : 421, { ...body, leader, leaderNode: member });
  }
  const status: Record<string, number> = {
    CONCLAVE_BUSY: 503,
    CONCLAVE_STOPPED: 503,
    CONCLAVE_TIMEOUT: 504,
    CONCLAVE_PROPOSAL_LOST: 409,
  };
  throw new HttpFailure(status[error.code] ?? 500, body);
}

function httpFailure(error: unknown): HttpFailure {
  if (error instanceof HttpFailure) return error;
  return new HttpFailure(500, { error: "internal error" });
}

function sendJson(response: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}
