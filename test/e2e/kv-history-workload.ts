/**
 * Clients of a concurrent KV workload over the HTTP API of real node processes, recording every
 * operation for the linearizability checker (src/sim/linearizability). Used by the tier-2
 * linearizability test (linearizability.test.ts) and by the soak (`npm run soak`, soak/).
 *
 * The model's value compare-and-set `cas(key, expected, value)` is a `POST /v1/kv/txn` with one
 * `value` compare (`null` = the key is absent) and one put on success.
 *
 * What leaves the history: operations that certainly did not happen — a refusal with
 * `outcome: "not-applied"` (421/503), or a connection refused before the request was sent;
 * reads that failed (they changed nothing). Timeouts, 504, a connection lost after sending and
 * `outcome: "unknown"` are recorded with an unknown outcome.
 */
import { Agent, request } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { Prng } from "../../src/lib/prng.ts";
import {
  HistoryRecorder,
  type KvInput,
  type KvOutput,
  type Operation,
} from "../../src/sim/linearizability/index.ts";
import { testApiToken } from "./api-token.ts";
import { type ProcessCluster, waitFor } from "./node-processes.ts";

const requestTimeoutMs = 2_000;
const restartAttemptsMax = 3;
const responseBytesMax = 64 * 1024;

/** The node among `names` that says it is the primary (the highest term wins), or null. */
export async function believedPrimary(
  cluster: ProcessCluster,
  names: readonly string[],
): Promise<string | null> {
  const statuses = await Promise.all(names.map((name) => cluster.status(name)));
  const leaders = statuses.filter((status) => status?.role === "leader");
  leaders.sort((a, b) => (b?.term ?? 0) - (a?.term ?? 0));
  const raftId = leaders[0]?.raftId ?? null;
  return raftId !== null && names.includes(raftId) ? raftId : null;
}

/** How the clients behave; every field has the tier-2 test's value as default. */
export interface WorkloadOptions {
  /** The members' names (n1, n2, …). */
  readonly names: readonly string[];
  /** The keys operations pick from, asked before each operation (the soak moves to new keys over time). */
  readonly keys: () => readonly string[];
  /** Clients, each with one operation in flight (default 6). */
  readonly clientCount?: number;
  /** Share of requests sent to a random member instead of the believed primary (default 0.2). */
  readonly otherMemberShare?: number;
  /** Longest pause between a client's operations, so that a key holds hundreds of operations, not thousands (default 30 ms). */
  readonly thinkTimeMsMax?: number;
}

export type KvOperation = Operation<KvInput, KvOutput>;

/** What a client learned from one request. */
type Answer =
  | { kind: "ok"; output: KvOutput }
  /** Certainly not applied; `leader` is the hinted primary's Raft id. */
  | { kind: "refused"; leader: string | null; why: string }
  | { kind: "unknown"; why: string };

type RawAnswer = { status: number; body: string } | { failure: "refused" | "unknown"; why: string };

/**
 * One HTTP request through `agent`. Clients keep their connections alive: thousands of short
 * connections would take ephemeral ports, one of which may be the port a killed node restarts on.
 * ECONNREFUSED before any connection existed is the one network error that proves nothing was sent.
 */
function httpRequest(
  agent: Agent,
  { host, port }: { host: string; port: number },
  request_: { method: string; path: string; body?: string },
): Promise<RawAnswer> {
  const { method, path, body } = request_;
  return new Promise((resolve) => {
    let connected = false;
    const headers = { authorization: `Bearer ${testApiToken}` };
    const req = request({ host, port, method, path, agent, headers });
    const timer = setTimeout(() => req.destroy(new Error("client timeout")), requestTimeoutMs);
    req.on("socket", (socket) => {
      if (socket.connecting) socket.once("connect", () => (connected = true));
      else connected = true; // a kept-alive connection
    });
    req.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // Refused before the connection existed: nothing was sent, so nothing was applied.
      const refused = !connected && error.code === "ECONNREFUSED";
      resolve({ failure: refused ? "refused" : "unknown", why: error.code ?? error.message });
    });
    req.on("response", (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= responseBytesMax) chunks.push(chunk);
      });
      response.on("error", () => undefined); // the request's error handler settles it
      response.on("end", () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
      });
    });
    req.end(body);
  });
}

const base64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");

/** Sends one model operation over the HTTP API and maps the answer. */
async function send(agent: Agent, address: { host: string; port: number }, input: KvInput): Promise<Answer> {
  const path = `/v1/kv/${encodeURIComponent(input.key)}`;
  let raw: RawAnswer;
  if (input.op === "get") raw = await httpRequest(agent, address, { method: "GET", path });
  else if (input.op === "put")
    raw = await httpRequest(agent, address, { method: "PUT", path, body: input.value });
  else if (input.op === "delete") raw = await httpRequest(agent, address, { method: "DELETE", path });
  else {
    const compare = [
      {
        key: input.key,
        target: "value",
        operator: "=",
        value: input.expected === null ? null : base64(input.expected),
      },
    ];
    const success = [{ op: "put", key: input.key, value: base64(input.value) }];
    const txn = JSON.stringify({ compare, success });
    raw = await httpRequest(agent, address, { method: "POST", path: "/v1/kv/txn", body: txn });
  }
  if ("failure" in raw) {
    return { kind: raw.failure, leader: null, why: raw.why };
  }
  if (raw.status === 200) {
    if (input.op === "get") return { kind: "ok", output: { op: "get", value: raw.body } };
    const json = JSON.parse(raw.body) as { deleted?: number; succeeded?: boolean };
    if (input.op === "put") return { kind: "ok", output: { op: "put" } };
    if (input.op === "delete")
      return { kind: "ok", output: { op: "delete", existed: (json.deleted ?? 0) > 0 } };
    return { kind: "ok", output: { op: "cas", ok: json.succeeded === true } };
  }
  let error: { code?: string; outcome?: string; leader?: string | null } = {};
  try {
    error = JSON.parse(raw.body) as typeof error;
  } catch {
    // not JSON: judged by its status alone
  }
  if (input.op === "get" && raw.status === 404 && error.code === "CONCLAVE_KEY_NOT_FOUND") {
    return { kind: "ok", output: { op: "get", value: null } };
  }
  const why = `${raw.status} ${error.code ?? raw.body.slice(0, 80)}`;
  // A failed read changed nothing: leaving it out is exact, whatever the reason.
  if (error.outcome === "not-applied" || input.op === "get") {
    return { kind: "refused", leader: error.leader ?? null, why };
  }
  return { kind: "unknown", why };
}

export interface Counters {
  ok: number;
  refused: number;
  unknown: number;
  /** Count per reason ("421 CONCLAVE_NOT_PRIMARY", "ECONNRESET", …) of refused and unknown operations. */
  reasons: Map<string, number>;
}

/** Clients that each run one operation at a time against the node they believe is primary. */
export class Workload {
  readonly recorder = new HistoryRecorder<KvInput, KvOutput>({ now: () => performance.now() });
  readonly counters: Counters = { ok: 0, refused: 0, unknown: 0, reasons: new Map() };
  readonly #dropped = new Set<number>();
  /** One keep-alive agent per client (at most one socket per member each). */
  readonly #agents = new Map<number, Agent>();
  readonly #cluster: ProcessCluster;
  readonly #prng: Prng;
  readonly #names: readonly string[];
  readonly #keys: () => readonly string[];
  readonly #clientCount: number;
  readonly #otherMemberShare: number;
  readonly #thinkTimeMsMax: number;
  #running = false;
  #valueSeq = 0;

  constructor(cluster: ProcessCluster, seed: number, options: WorkloadOptions) {
    this.#cluster = cluster;
    this.#prng = new Prng(seed);
    this.#names = options.names;
    this.#keys = options.keys;
    this.#clientCount = options.clientCount ?? 6;
    this.#otherMemberShare = options.otherMemberShare ?? 0.2;
    this.#thinkTimeMsMax = options.thinkTimeMsMax ?? 30;
  }

  /** The history without the operations that certainly did not happen. */
  history(): KvOperation[] {
    return this.recorder.history().filter((_, index) => !this.#dropped.has(index));
  }

  /** Runs the clients until `stop` resolves; resolves when all have settled. */
  async run(stop: Promise<void>): Promise<void> {
    this.#running = true;
    const clients = Array.from({ length: this.#clientCount }, (_, i) => this.#client(i + 1));
    try {
      await stop;
    } finally {
      this.#running = false;
      await Promise.all(clients);
    }
  }

  /** Closes every client connection. */
  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }

  /** Runs `input` until it completes (at most `attempts` tries); false when it never did. */
  async runUntilComplete(clientId: number, input: KvInput, attempts: number): Promise<boolean> {
    let target: string | null = null;
    for (let attempt = 0; attempt < attempts; attempt++) {
      target ??= await this.findPrimary();
      if (target === null) {
        await delay(100);
        continue;
      }
      const answer = await this.#perform(clientId, target, input);
      if (answer.kind === "ok") return true;
      target = answer.kind === "refused" ? answer.leader : null;
    }
    return false;
  }

  /** The node that says it is the primary (the highest term wins), by short name. */
  findPrimary(): Promise<string | null> {
    return believedPrimary(this.#cluster, this.#names);
  }

  async #client(clientId: number): Promise<void> {
    let target: string | null = null;
    const lastSeen = new Map<string, string | null>();
    while (this.#running) {
      target ??= await this.findPrimary();
      if (target === null) {
        await delay(50);
        continue;
      }
      const input = this.#randomInput(clientId, lastSeen);
      // Some requests go to any member: writes are then forwarded to the primary and reads ask
      // it for a read index, paths a deposed or restarted member must get right too.
      const anyMember = this.#prng.chance(this.#otherMemberShare);
      const answer = await this.#perform(clientId, anyMember ? this.#prng.pick(this.#names) : target, input);
      if (answer.kind === "ok") {
        if (answer.output.op === "get") lastSeen.set(input.key, answer.output.value);
        else if (input.op === "put" || (input.op === "cas" && answer.output.op === "cas" && answer.output.ok))
          lastSeen.set(input.key, input.value);
      } else if (!anyMember) {
        target = answer.kind === "refused" ? answer.leader : null;
        if (target !== null && !this.#names.includes(target)) target = null;
      }
      await delay(this.#prng.nextInt(this.#thinkTimeMsMax + 1));
    }
  }

  async #perform(clientId: number, target: string, input: KvInput): Promise<Answer> {
    const handle = this.recorder.invoke(clientId, input);
    let agent = this.#agents.get(clientId);
    if (agent === undefined) {
      agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
      this.#agents.set(clientId, agent);
    }
    const { host, httpPort } = this.#cluster.spec(target);
    const answer = await send(agent, { host, port: httpPort }, input);
    if (answer.kind === "ok") {
      this.recorder.complete(handle, answer.output);
      this.counters.ok++;
    } else {
      this.recorder.unknown(handle);
      if (answer.kind === "refused") {
        this.#dropped.add(handle.index);
        this.counters.refused++;
      } else {
        this.counters.unknown++;
      }
      const reason = `${answer.kind} ${input.op === "get" ? "read" : "write"}: ${answer.why}`;
      this.counters.reasons.set(reason, (this.counters.reasons.get(reason) ?? 0) + 1);
    }
    return answer;
  }

  #randomInput(clientId: number, lastSeen: Map<string, string | null>): KvInput {
    const key = this.#prng.pick(this.#keys());
    const value = `c${clientId}-${++this.#valueSeq}`;
    const roll = this.#prng.nextFloat();
    if (roll < 0.4) return { op: "get", key };
    if (roll < 0.7) return { op: "put", key, value };
    if (roll < 0.8) return { op: "delete", key };
    const expected = lastSeen.get(key) ?? null;
    return { op: "cas", key, expected, value };
  }
}

/**
 * Starts `name` again on its data directory and waits until it answers. The kernel may have
 * lent one of its ports to an outgoing connection while it was down (EADDRINUSE): then retry.
 */
export async function restart(cluster: ProcessCluster, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const node = cluster.start(name);
    const outcome = await waitFor(`${name} to answer after its restart`, 10_000, async () => {
      if (node.exit !== null) return "exited";
      return (await cluster.status(name)) === null ? null : "up";
    });
    if (outcome === "up") return;
    if (attempt === restartAttemptsMax) {
      throw new Error(`${name} did not restart:\n${node.output.slice(-5).join("\n")}`);
    }
    console.log(`# restart of ${name} failed (${node.output.at(-1)}); retrying`);
    await delay(200);
  }
}
