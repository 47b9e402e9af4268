/**
 * The composition root: the only file that picks concrete adapters. `createNode(config)` wires a
 * Conclave node — file storage in `node.data_dir`, the TCP transport to the static member list,
 * the timing profile, the replicated SQLite + KV state machine (`<data_dir>/db.sqlite`), pino
 * logging, the node identity and the cookie checks — around a {@link RaftRuntime}, plus the HTTP
 * API (src/admin) and the lease expiry timer (src/cluster).
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
import { randomBytes, randomInt } from "node:crypto";
import { readdir, readFile, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { encodeCommand } from "./adapters/sqlite/commands.ts";
import { sqliteDatabase } from "./adapters/sqlite/sqlite-database.ts";
import { SqliteStateMachine } from "./adapters/sqlite/sqlite-state-machine.ts";
import { adoptUnnamedStandalone } from "./adapters/storage/adopt-standalone.ts";
import { acquireDataDirLock, type DataDirLock } from "./adapters/storage/data-dir-lock.ts";
import { DurableWrites } from "./adapters/storage/durable-writes.ts";
import { createFileStorage } from "./adapters/storage/file-storage.ts";
import { MemoryNetwork, MemoryTransport } from "./adapters/transport/memory-transport.ts";
import { TcpTransport } from "./adapters/transport/tcp-transport.ts";
import type { TransportTlsOptions } from "./adapters/transport/tls-identity.ts";
import type { AdminContext } from "./admin/admin-context.ts";
import { type AdminServer, startAdminServer } from "./admin/admin-server.ts";
import { HttpMetrics } from "./admin/http-metrics.ts";
import { LeaderContact } from "./admin/leader-contact.ts";
import type { NodeMetrics } from "./admin/metrics.ts";
import { SlowRequestLog } from "./admin/slow-requests.ts";
import { ApiTokenKeeper } from "./cluster/api-token.ts";
import { ChannelTransport } from "./cluster/cluster-channel.ts";
import { ClusterServices } from "./cluster/cluster-services.ts";
import { Conclave } from "./cluster/embedded-conclave.ts";
import { LeaseClock } from "./cluster/lease-clock.ts";
import { LeaseExpiry } from "./cluster/lease-expiry.ts";
import { SqlClock } from "./cluster/sql-clock.ts";
import { resolveClusterCookie } from "./config/cookie.ts";
import { loadConfig } from "./config/load.ts";
import type { NodeConfig } from "./config/node-config.ts";
import { type NodeIdentity, openNodeIdentity, recordClusterId } from "./config/node-identity.ts";
import { parseNodeName } from "./config/node-name.ts";
import { type TimingProfile, timingProfile, timingProfileMs } from "./config/timing.ts";
import { ConclaveError } from "./lib/errors.ts";
import { Prng } from "./lib/prng.ts";
import type { Clock } from "./ports/clock.ts";
import type { MemberRecord } from "./ports/cluster-metadata.ts";
import type { Database } from "./ports/database.ts";
import type { Logger } from "./ports/logger.ts";
import type { PeerAddress, PeerEvent, Transport } from "./ports/transport.ts";
import type { Membership, RaftStatus } from "./raft/index.ts";
import { groupCommitBacklogMin, RaftRuntime } from "./runtime/raft-runtime.ts";
import type { RuntimeEvents } from "./runtime/runtime-events.ts";

/** Where {@link createConclave} reads its configuration from, when not given a loaded `NodeConfig`. */
export interface ConclaveConfigSource {
  /** A TOML file (see examples/conclave.toml); without it only defaults, the environment and `overrides`. */
  readonly configFile?: string;
  /** A snake_case object shaped like the file; wins over the file and `CONCLAVE_*` variables. */
  readonly overrides?: object;
  /** Environment variables to read `CONCLAVE_*` overrides from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Embeds a Conclave node in this process: checks the configuration against the data directory
 * and wires the node (nothing listens until `start()`), with the replicated database (`db`,
 * `kv`), `locks`, role events and `onPrimary` on top. See src/cluster/embedded-conclave.ts.
 *
 * @example
 * ```ts
 * const conclave = await createConclave({
 *   overrides: { node: { name: "n1@127.0.0.1", data_dir: "./data/n1" }, cluster: { cookie, members } },
 * });
 * conclave.onPrimary(async (signal) => { while (!signal.aborted) await leaderOnlyTick(signal); });
 * await conclave.start();
 * await conclave.db.execute([{ sql: "INSERT INTO runs (at) VALUES (CURRENT_TIMESTAMP)" }]);
 * await conclave.stop();
 * ```
 * @throws ConclaveError configuration, cookie, identity and data-directory errors, as {@link createNode}
 */
export async function createConclave(
  config: NodeConfig | ConclaveConfigSource,
  options: NodeOptions = {},
): Promise<Conclave> {
  const loaded = isNodeConfig(config)
    ? config
    : await loadConfig({
        ...(config.configFile === undefined ? {} : { file: config.configFile }),
        ...(config.overrides === undefined ? {} : { overrides: config.overrides }),
        ...(config.env === undefined ? {} : { env: config.env }),
      });
  return new Conclave(await createNode(loaded, options));
}

function isNodeConfig(config: NodeConfig | ConclaveConfigSource): config is NodeConfig {
  return "node" in config && "cluster" in config && "http" in config;
}

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
  /** KV revisions kept for watches (tests; must be the same on every member). Default 10,000. */
  readonly kvHistoryRevisionsMax?: number;
  /**
   * This node's wall clock, ms since the epoch (default `Date.now`): tests of clock skew give
   * members clocks that run ahead or behind, or that jump. Leases (through
   * src/cluster/lease-clock.ts), SQL's `CURRENT_TIMESTAMP` (src/cluster/sql-clock.ts) and the members' clock offsets read
   * it; Raft timing never does.
   */
  readonly wallClockMs?: () => number;
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
  /** The replicated database (read locally after `runtime.readIndex()`; write through `runtime.propose`). */
  readonly database: Database;
  /** The node's structured logger. */
  readonly logger: Logger;
  /** The clock lease commands are stamped with, ms since the epoch (src/cluster/lease-clock.ts). */
  leaseClockMs(): number;
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
  // An unnamed standalone node given a name keeps its data: its stored one-node membership moves
  // to the new Raft id (durably) before identity.json records the name, and its member-list row
  // goes (through the log) so that it can announce itself by name. See adopt-standalone.ts.
  const adoption = await adoptUnnamedStandalone({
    dataDir: config.node.dataDir,
    nodeName: config.node.name,
    raftId,
    unnamedRaftId: standaloneIdDefault,
    commandsBefore: [encodeCommand({ kind: "cluster", op: "member-remove", raftId: standaloneIdDefault })],
  });
  const { identity } = await openNodeIdentity({ dataDir: config.node.dataDir, nodeName: config.node.name });
  // One process per data directory; released by stop(), or right here if wiring fails.
  const lock = acquireDataDirLock(config.node.dataDir);
  try {
    const node = await wireNode(config, options, { cookie, raftId, nodeName, identity, lock });
    if (adoption.kind === "adopted")
      node.logger.info(adoption, "adopted the data of the unnamed standalone node under this node's name");
    return node;
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
  const transport = new ChannelTransport(
    clustered
      ? await clusterTransport(config, { raftId, nodeName, clusterId, cookie: cookie as string }, logger)
      : new MemoryTransport(new MemoryNetwork(), { self: { nodeId: raftId, name: nodeName } }),
  );
  const timing = timingProfile(config.cluster.timing);
  const machine = new SqliteStateMachine({
    dataDir: config.node.dataDir,
    applyCommitIntervalMs: config.cluster.applyCommitIntervalMs,
    ...(options.kvHistoryRevisionsMax === undefined
      ? {}
      : { kvHistoryRevisionsMax: options.kvHistoryRevisionsMax }),
  });
  const wallClockMs = options.wallClockMs ?? Date.now;
  // SQL's CURRENT_TIMESTAMP & co. read the primary's clock, also on a skewed secondary.
  const sqlClock = new SqlClock({
    wallClockMs,
    monotonicMs: () => performance.now(),
    primary: () => {
      if (!runtime.running) return null;
      const { role, leader } = runtime.status();
      return role === "leader" || leader === null ? null : services.pings.contact(leader);
    },
  });
  const database = sqliteDatabase(machine, {
    now: () => new Date(sqlClock.nowMs()),
    random: (count) => randomBytes(count),
  });
  const leaseClock: LeaseClock = new LeaseClock({
    wallClockMs,
    monotonicMs: () => performance.now(),
    leaderTerm: (): number | null => {
      if (!runtime.running) return null;
      const { role, term } = runtime.status();
      return role === "leader" ? term : null;
    },
  });
  const durableWrites = new DurableWrites();
  const runtime: RaftRuntime = new RaftRuntime({
    id: raftId,
    storage: createFileStorage(config.node.dataDir, { durableWrites }),
    transport,
    stateMachine: machine,
    clock: systemClock,
    logger,
    prng: new Prng(randomInt(2 ** 31)),
    ...raftTiming(timing, options.tickIntervalMs),
    bootstrap: bootstrapMembership(config, raftId),
    callTimeoutMsDefault: config.cluster.syncTimeoutMs,
    snapshotEveryEntries: config.cluster.snapshotEveryEntries,
    snapshotEveryBytes: config.cluster.snapshotEveryBytes,
    // Leases start by the primary's clock, the one that expires them.
    stampAtPrimary: (data) => database.stampWallClock(data, leaseClock.nowMs()),
    // Under load (8 or more writes waiting on a member), `cluster.group_commit_ms` for input to
    // gather before the next log write: fewer writes, messages and wake-ups per request. Off by
    // default (0): where the cores are not saturated the wait only left them idle.
    groupCommit:
      config.cluster.groupCommitMs === 0
        ? null
        : { backlogMin: groupCommitBacklogMin, gatherMs: config.cluster.groupCommitMs },
    // As the primary, `cluster.commit_wait_ms` for the followers' answers to its last log write
    // before the next one, so that the next commits it (src/runtime/DESIGN.md, "Commit wait").
    commitWaitMs: config.cluster.commitWaitMs,
  });
  const services = new ClusterServices({
    wallClockMs,
    channel: transport,
    runtime,
    database,
    logger,
    selfRecord: selfRecord(config, { raftId, nodeName, nodeId: identity.nodeId }),
    staticPeers: clustered ? staticPeers(config) : [],
    defaultClusterPort: config.cluster.port,
  });
  services.initialPeers();
  const apiToken = new ApiTokenKeeper({
    path: config.http.tokenFile ?? join(config.node.dataDir, "admin-token"),
    cookie,
    runtime,
    metadata: database.cluster,
    encode: database.encodeCommand,
    logger,
  });
  await apiToken.load();
  return new Node({
    config,
    nodeName,
    raftId,
    nodeId: identity.nodeId,
    runtime,
    machine,
    database,
    logger,
    lock,
    services,
    transport,
    apiToken,
    leaseClock,
    durableWrites,
  });
}

function staticPeers(config: NodeConfig): PeerAddress[] {
  return config.cluster.members.map((member) => ({
    nodeId: member.name,
    name: member.nodeName,
    host: member.host,
    port: member.port,
  }));
}

/** This node's row of the replicated member list, as its configuration states it. */
function selfRecord(
  config: NodeConfig,
  self: { raftId: string; nodeName: string; nodeId: string },
): MemberRecord {
  const position = config.cluster.members.findIndex((member) => member.name === self.raftId);
  const named = config.node.name === undefined ? null : parseNodeName(config.node.name);
  const nodeHost = named?.ok === true ? named.value.host : "127.0.0.1";
  const wildcard = (bind: string) => bind === "0.0.0.0" || bind === "::";
  const httpHost = wildcard(config.http.bind) ? nodeHost : config.http.bind;
  return {
    raftId: self.raftId,
    nodeId: self.nodeId,
    nodeName: self.nodeName,
    clusterHost: config.cluster.members[position]?.host ?? nodeHost,
    clusterPort: config.cluster.port,
    httpUrl: `http://${httpHost.includes(":") ? `[${httpHost}]` : httpHost}:${config.http.port}`,
    role: config.node.role,
    neverPrimary: config.node.neverPrimary,
    priority: config.node.primaryPriority,
    segment: config.node.segment,
    configuredPosition: position === -1 ? null : position,
  };
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
    // A node asking to join is not a peer yet; the cluster channel decides what a guest may say.
    admitGuests: true,
    // Raft answers a leader's heartbeats and a candidate's votes well within an election timeout.
    peerSilenceMsMax: 2 * timingProfileMs(config.cluster.timing).electionTimeoutMsMax,
  });
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
  readonly database: Database;
  readonly logger: pino.Logger;
  readonly #machine: SqliteStateMachine;
  readonly #config: NodeConfig;
  readonly #logger: pino.Logger;
  readonly #lock: DataDirLock;
  readonly #leaderContact: LeaderContact;
  readonly #leaseExpiry: LeaseExpiry;
  readonly #services: ClusterServices;
  readonly #transport: Transport;
  readonly #apiToken: ApiTokenKeeper;
  readonly #leaseClock: LeaseClock;
  readonly #durableWrites: DurableWrites;
  #leaderChanges = 0;
  #lastLeader: string | null = null;
  #server: AdminServer | null = null;
  #state: "new" | "started" | "stopped" = "new";

  constructor(parts: {
    config: NodeConfig;
    nodeName: string;
    raftId: string;
    nodeId: string;
    runtime: RaftRuntime;
    machine: SqliteStateMachine;
    database: Database;
    logger: pino.Logger;
    lock: DataDirLock;
    services: ClusterServices;
    transport: Transport;
    apiToken: ApiTokenKeeper;
    leaseClock: LeaseClock;
    durableWrites: DurableWrites;
  }) {
    this.#durableWrites = parts.durableWrites;
    this.#leaseClock = parts.leaseClock;
    this.#apiToken = parts.apiToken;
    this.#transport = parts.transport;
    this.#lock = parts.lock;
    this.#services = parts.services;
    this.#config = parts.config;
    this.nodeName = parts.nodeName;
    this.raftId = parts.raftId;
    this.nodeId = parts.nodeId;
    this.runtime = parts.runtime;
    this.#machine = parts.machine;
    this.database = parts.database;
    this.#logger = parts.logger;
    this.logger = parts.logger;
    this.#leaderContact = new LeaderContact(
      () => (this.runtime.running ? this.runtime.status() : null),
      () => performance.now(),
    );
    this.#leaseExpiry = new LeaseExpiry({
      runtime: this.runtime,
      database: this.database,
      leaseClockMs: () => parts.leaseClock.nowMs(),
      logger: this.#logger,
    });
    this.runtime.on("role-changed", ({ leader }) => {
      if (leader === this.#lastLeader) return;
      this.#lastLeader = leader;
      this.#leaderChanges++;
    });
  }

  leaseClockMs(): number {
    return this.#leaseClock.nowMs();
  }

  get httpAddress(): { host: string; port: number } | null {
    return this.#server?.address() ?? null;
  }

  on<K extends keyof RuntimeEvents>(name: K, listener: (event: RuntimeEvents[K]) => void): () => void {
    return this.runtime.on(name, listener);
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new ConclaveError("CONCLAVE_NODE_STATE", "a node starts once");
    this.#state = "started";
    try {
      await this.runtime.start();
      this.#services.start();
      this.#apiToken.start();
      this.#leaderContact.start();
      this.#leaseExpiry.start();
      const { bind, port } = this.#config.http;
      this.#server = await startAdminServer(this.#adminContext(), { host: bind, port });
      this.#logger.info(
        { http: `${bind}:${port}`, cluster: `${this.#config.cluster.bind}:${this.#config.cluster.port}` },
        "node is up",
      );
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  #adminContext(): AdminContext {
    return {
      node: {
        status: () => ({ ...this.status() }),
        memberName: (raftId) => this.memberAddress(raftId),
        details: () => this.details(),
        metrics: () => this.metrics(),
      },
      runtime: this.runtime,
      database: this.database,
      logger: this.#logger,
      slowRequests: new SlowRequestLog({
        thresholdMs: this.#config.log.slowRequestMs,
        linesPerSecondMax: this.#config.log.slowRequestLogsPerSecond,
        logger: this.#logger,
      }),
      httpMetrics: new HttpMetrics(),
      leaderContact: this.#leaderContact,
      leaseClockMs: () => this.#leaseClock.nowMs(),
      cluster: { status: () => this.#services.status(), operations: this.#services.operations },
      apiToken: this.#apiToken,
    };
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#services.stop();
    this.#apiToken.stop();
    this.#leaseExpiry.stop();
    this.#leaderContact.stop();
    try {
      if (this.#server !== null) await this.#server.stop();
      this.#server = null;
      await this.runtime.stop();
      this.#machine.close();
    } finally {
      // Even a stop that failed half-way leaves the directory to the next start: this process
      // no longer writes to it.
      this.#lock.release();
    }
    this.#logger.info({}, "node stopped");
    this.#logger.flush();
  }

  /** The `name@host` of a member by its Raft id, or null when unknown. */
  memberAddress(raftId: string | null): string | null {
    if (raftId === null) return null;
    const row = this.database.cluster.members().find((member) => member.raftId === raftId);
    return (
      row?.nodeName ?? this.#config.cluster.members.find((member) => member.name === raftId)?.nodeName ?? null
    );
  }

  /** What `GET /v1/metrics` reports (src/admin/metrics.ts), read now. */
  metrics(): NodeMetrics {
    const raft = this.runtime.running ? this.runtime.status() : null;
    const runtimeStats = this.runtime.stats();
    const { forwarding, ...raftCounters } = runtimeStats;
    const peers = this.#services.peers.peers;
    return {
      raft: {
        term: raft?.term ?? 0,
        isLeader: raft?.role === "leader",
        hasLeader: (raft?.leader ?? null) !== null,
        leaderChanges: this.#leaderChanges,
        commit: raft?.commit ?? 0,
        applied: raft?.applied ?? 0,
        firstIndex: raft?.firstIndex ?? 0,
        lastIndex: raft?.lastIndex ?? 0,
        logBytes: raft?.logBytes ?? 0,
      },
      storage: this.#durableWrites.snapshot(),
      transport: { ...this.#transportStats(), ...raftCounters },
      forwarding,
      peers: {
        known: peers.length,
        reachable: peers.filter((peer) => this.#services.pings.reachable(peer.nodeId)).length,
      },
    };
  }

  /** This node's subsystems, for `conclave node`. */
  async details(): Promise<Record<string, unknown>> {
    const raft = this.runtime.status();
    const dataDir = this.#config.node.dataDir;
    const disk = await statfs(dataDir).catch(() => null);
    const peers = this.#services.peers.peers.map((peer) => ({
      id: peer.nodeId,
      name: peer.name,
      address: `${peer.host}:${peer.port}`,
      reachable: this.#services.pings.reachable(peer.nodeId),
    }));
    return {
      node: this.nodeName,
      id: this.nodeId,
      state: this.status().state,
      storage: {
        dataDir,
        usedBytes: await directoryBytes(dataDir),
        freeBytes: disk === null ? null : disk.bavail * disk.bsize,
        firstIndex: raft.firstIndex,
        lastIndex: raft.lastIndex,
        diskFull: this.runtime.diskFullReason,
        snapshot: this.runtime.snapshots.latest,
        copyingSnapshotForFollower: this.runtime.snapshots.copyingForFollower,
        snapshotFailure: this.runtime.snapshotFailureReason,
        logBytes: raft.logBytes,
        logFull: this.runtime.logFullReason,
      },
      apply: { commit: raft.commit, applied: raft.applied, lag: raft.commit - raft.applied },
      transport: { peers, ...this.runtime.stats(), ...this.#transportStats() },
      http: this.httpAddress,
      memory: processMemory(),
    };
  }

  #transportStats(): Record<string, number> {
    return { ...this.#transport.stats() };
  }

  status(): NodeStatus {
    const raft = this.runtime.status();
    return {
      node: this.nodeName,
      id: this.nodeId,
      raftId: this.raftId,
      state: this.runtime.running ? this.#services.selfState() : "DOWN",
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

/** Bytes used by the files under `directory` (at most 10,000 files are counted). */
async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  let counted = 0;
  const walk = async (path: string): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (counted++ > 10_000) return;
      const child = join(path, entry.name);
      if (entry.isDirectory()) await walk(child);
      else total += (await stat(child).catch(() => null))?.size ?? 0;
    }
  };
  await walk(directory);
  return total;
}

/** This process's memory: resident set, V8 heap, and memory outside the heap (SQLite, buffers). */
function processMemory(): Record<string, number> {
  const usage = process.memoryUsage();
  return {
    rssBytes: usage.rss,
    heapUsedBytes: usage.heapUsed,
    heapTotalBytes: usage.heapTotal,
    externalBytes: usage.external,
    arrayBuffersBytes: usage.arrayBuffers,
  };
}
