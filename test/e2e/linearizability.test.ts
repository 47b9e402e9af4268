/**
 * Tier 2 (TESTING.md): three real node processes serve a concurrent KV workload through the HTTP
 * API while the primary is SIGKILLed and restarted on its data directory every few seconds (and
 * once SIGSTOPped and resumed). Every operation is recorded with its call and return times; the
 * history, closed by one linearizable read per key after the cluster healed, must be
 * linearizable (`checkLinearizability` with `kvModel`). That also proves that no acknowledged
 * write was lost: a lost write makes the final reads, or some read before them, impossible.
 *
 * The model's value compare-and-set `cas(key, expected, value)` is a `POST /v1/kv/txn` with one
 * `value` compare (`null` = the key is absent) and one put on success.
 *
 * What leaves the history: operations that certainly did not happen — a refusal with
 * `outcome: "not-applied"` (421/503), or a connection refused before the request was sent;
 * reads that failed (they changed nothing). Timeouts, 504, a connection lost after sending and
 * `outcome: "unknown"` are recorded with an unknown outcome.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { Prng } from "../../src/lib/prng.ts";
import {
  type CheckResult,
  checkLinearizability,
  HistoryRecorder,
  type KvInput,
  type KvOutput,
  kvModel,
  type Operation,
} from "../../src/sim/linearizability/index.ts";
import { testApiToken } from "./api-token.ts";
import { ProcessCluster, waitFor } from "./node-processes.ts";

const names = ["n1", "n2", "n3"];
const keys = ["k0", "k1", "k2", "k3"];
const clientCount = 6;
const requestTimeoutMs = 2_000;
const killCount = 4;
const killIntervalMs = 3_000;
const restartAfterMs = 1_000;
/** Longer than the request timeout: requests held by the paused primary end unknown, and run later. */
const pauseMs = 2_500;
/** Share of requests sent to a random member instead of the believed primary. */
const otherMemberShare = 0.2;
const restartAttemptsMax = 3;
/** A pause between a client's operations, so that a key holds hundreds of operations, not thousands. */
const thinkTimeMsMax = 30;
const responseBytesMax = 64 * 1024;

type KvOperation = Operation<KvInput, KvOutput>;

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
  port: number,
  request_: { method: string; path: string; body?: string },
): Promise<RawAnswer> {
  const { method, path, body } = request_;
  return new Promise((resolve) => {
    let connected = false;
    const headers = { authorization: `Bearer ${testApiToken}` };
    const req = request({ host: "127.0.0.1", port, method, path, agent, headers });
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
async function send(agent: Agent, port: number, input: KvInput): Promise<Answer> {
  const path = `/v1/kv/${encodeURIComponent(input.key)}`;
  let raw: RawAnswer;
  if (input.op === "get") raw = await httpRequest(agent, port, { method: "GET", path });
  else if (input.op === "put")
    raw = await httpRequest(agent, port, { method: "PUT", path, body: input.value });
  else if (input.op === "delete") raw = await httpRequest(agent, port, { method: "DELETE", path });
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
    raw = await httpRequest(agent, port, { method: "POST", path: "/v1/kv/txn", body: txn });
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

interface Counters {
  ok: number;
  refused: number;
  unknown: number;
  /** Count per reason ("421 CONCLAVE_NOT_PRIMARY", "ECONNRESET", …) of refused and unknown operations. */
  reasons: Map<string, number>;
}

/** Clients that each run one operation at a time against the node they believe is primary. */
class Workload {
  readonly recorder = new HistoryRecorder<KvInput, KvOutput>({ now: () => performance.now() });
  readonly counters: Counters = { ok: 0, refused: 0, unknown: 0, reasons: new Map() };
  readonly #dropped = new Set<number>();
  /** One keep-alive agent per client (at most one socket per member each). */
  readonly #agents = new Map<number, Agent>();
  readonly #cluster: ProcessCluster;
  readonly #prng: Prng;
  #running = false;
  #valueSeq = 0;

  constructor(cluster: ProcessCluster, seed: number) {
    this.#cluster = cluster;
    this.#prng = new Prng(seed);
  }

  /** The history without the operations that certainly did not happen. */
  history(): KvOperation[] {
    return this.recorder.history().filter((_, index) => !this.#dropped.has(index));
  }

  /** Runs `clientCount` clients until `stop` resolves; resolves when all have settled. */
  async run(stop: Promise<void>): Promise<void> {
    this.#running = true;
    const clients = Array.from({ length: clientCount }, (_, i) => this.#client(i + 1));
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
  async findPrimary(): Promise<string | null> {
    const statuses = await Promise.all(names.map((name) => this.#cluster.status(name)));
    const leaders = statuses.filter((status) => status?.role === "leader");
    leaders.sort((a, b) => (b?.term ?? 0) - (a?.term ?? 0));
    const raftId = leaders[0]?.raftId ?? null;
    return raftId !== null && names.includes(raftId) ? raftId : null;
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
      const anyMember = this.#prng.chance(otherMemberShare);
      const answer = await this.#perform(clientId, anyMember ? this.#prng.pick(names) : target, input);
      if (answer.kind === "ok") {
        if (answer.output.op === "get") lastSeen.set(input.key, answer.output.value);
        else if (input.op === "put" || (input.op === "cas" && answer.output.op === "cas" && answer.output.ok))
          lastSeen.set(input.key, input.value);
      } else if (!anyMember) {
        target = answer.kind === "refused" ? answer.leader : null;
        if (target !== null && !names.includes(target)) target = null;
      }
      await delay(this.#prng.nextInt(thinkTimeMsMax + 1));
    }
  }

  async #perform(clientId: number, target: string, input: KvInput): Promise<Answer> {
    const handle = this.recorder.invoke(clientId, input);
    let agent = this.#agents.get(clientId);
    if (agent === undefined) {
      agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
      this.#agents.set(clientId, agent);
    }
    const answer = await send(agent, this.#cluster.spec(target).httpPort, input);
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
    const key = this.#prng.pick(keys);
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
async function restart(cluster: ProcessCluster, name: string): Promise<void> {
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

/** Kills the primary every `killIntervalMs` and restarts it on its data dir; then one pause. */
async function injectFaults(cluster: ProcessCluster, workload: Workload, killTimes: number[]): Promise<void> {
  for (let kill = 0; kill < killCount; kill++) {
    await delay(killIntervalMs - restartAfterMs);
    const primary = await waitFor("a primary to kill", 10_000, () => workload.findPrimary());
    killTimes.push(performance.now());
    cluster.signal(primary, "SIGKILL");
    await cluster.node(primary).exited;
    await delay(restartAfterMs);
    await restart(cluster, primary);
  }
  await delay(killIntervalMs - restartAfterMs);
  const paused = await waitFor("a primary to pause", 10_000, () => workload.findPrimary());
  cluster.signal(paused, "SIGSTOP");
  await delay(pauseMs);
  cluster.signal(paused, "SIGCONT");
  await delay(killIntervalMs - restartAfterMs);
}

/** Time from each kill to the first write called after it and acknowledged. */
function recoveryTimesMs(history: readonly KvOperation[], killTimes: readonly number[]): number[] {
  return killTimes.map((killedAt) => {
    const acknowledged = history
      .filter((op) => op.input.op !== "get" && op.return !== null && op.call >= killedAt)
      .map((op) => (op.return as number) - killedAt);
    return acknowledged.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...acknowledged);
  });
}

/** True when a completed `op` set its key to a new value (every put and cas value is unique). */
function changedTheValue(op: KvOperation): boolean {
  if (op.return === null || op.output === null) return false;
  return op.input.op === "put" || op.input.op === "delete" || (op.output.op === "cas" && op.output.ok);
}

/**
 * The history with one final read made stale: it answers the value of a put that another write,
 * called after the put returned, overwrote before the read was called. No order explains it.
 */
function withStaleFinalRead(history: readonly KvOperation[]): KvOperation[] | null {
  for (const key of keys) {
    const ofKey = history.filter((op) => op.input.key === key && op.return !== null);
    const finalRead = ofKey.filter((op) => op.input.op === "get").at(-1);
    if (finalRead === undefined) continue;
    for (const put of ofKey) {
      if (put.input.op !== "put") continue;
      const putReturn = put.return as number;
      const overwritten = ofKey.some(
        (op) => changedTheValue(op) && op.call > putReturn && (op.return as number) < finalRead.call,
      );
      if (!overwritten) continue;
      const stale: KvOutput = { op: "get", value: put.input.value };
      return history.map((op) => (op === finalRead ? { ...op, output: stale } : op));
    }
  }
  return null;
}

describe("linearizable KV on 3 real processes while the primary is killed", { timeout: 50_000 }, () => {
  let cluster: ProcessCluster;
  let history: KvOperation[] = [];

  before(async () => {
    cluster = await ProcessCluster.create(3);
    for (const name of names) cluster.start(name);
    await agreedPrimary(cluster, "one agreed primary");
  });
  after(async () => {
    await cluster.killAll();
  });

  it("keeps every operation linearizable and loses no acknowledged write", async (t) => {
    const seed = Number(process.env.LINEARIZABILITY_SEED ?? Date.now() % 1_000_000);
    const workload = new Workload(cluster, seed);
    const killTimes: number[] = [];
    try {
      await workload.run(injectFaults(cluster, workload, killTimes));
      await agreedPrimary(cluster, "one primary agreed by all three after healing");
      for (const key of keys) {
        const read = await workload.runUntilComplete(0, { op: "get", key }, 20);
        assert.ok(read, `a final linearizable read of ${key} completed`);
      }
    } finally {
      workload.close();
    }
    history = workload.history();
    const checkStartedMs = performance.now();
    const result = checkLinearizability(history, kvModel, { timeBudgetMs: 20_000 });
    const checkMs = Math.round(performance.now() - checkStartedMs);

    const { ok, refused, unknown, reasons } = workload.counters;
    const recoveries = recoveryTimesMs(history, killTimes);
    const sorted = [...recoveries].sort((a, b) => a - b);
    t.diagnostic(`seed ${seed}: ${ok} ok, ${refused} refused (not applied), ${unknown} unknown outcome`);
    t.diagnostic(`not ok, by reason: ${JSON.stringify(Object.fromEntries(reasons))}`);
    t.diagnostic(
      `${killTimes.length} primary kills; kill -> first acknowledged write: p50 ${Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0)} ms, max ${Math.round(sorted.at(-1) ?? 0)} ms`,
    );
    t.diagnostic(
      `linearizability: ${result.result}, ${result.operationsChecked} operations over ${result.partitions} keys, ${result.statesExplored} states, ${checkMs} ms`,
    );
    if (result.result !== "ok") keepEvidence(seed, history, result);

    assert.equal(result.result, "ok", explain(result));
    assert.equal(killTimes.length, killCount);
    assert.ok(recoveries.every(Number.isFinite), "the cluster acknowledged writes again after every kill");
    assert.ok(ok > 200, `the workload made progress (${ok} operations completed)`);
  });

  it("is a test that can fail: a stale final read in the same history is a violation", (t) => {
    assert.ok(history.length > 0, "the history of the previous test");
    const corrupted = withStaleFinalRead(history);
    assert.ok(corrupted, "a put overwritten before a final read exists");
    const result = checkLinearizability(corrupted, kvModel, { timeBudgetMs: 20_000 });
    t.diagnostic(`corrupted history: ${result.result}`);
    assert.equal(result.result, "violation");
  });
});

function explain(result: CheckResult<KvInput, KvOutput>): string {
  if (result.result === "violation") return result.explanation;
  if (result.result === "unknown") return result.reason;
  return "ok";
}

/** Keeps the history of a failed check outside the cluster's directory (which is removed). */
function keepEvidence(
  seed: number,
  history: readonly KvOperation[],
  result: CheckResult<KvInput, KvOutput>,
): void {
  const file = join(tmpdir(), `conclave-linearizability-${seed}-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ seed, result: explain(result), history }, null, 1));
  console.log(`# history kept in ${file}`);
}

/** Waits for a primary all three agree on; when there is none, prints what each node says. */
async function agreedPrimary(cluster: ProcessCluster, what: string): Promise<void> {
  try {
    await waitFor(what, 15_000, () => cluster.leader(names));
  } catch (error) {
    await reportNodes(cluster);
    throw error;
  }
}

/** Prints each node's status and the end of its log. */
async function reportNodes(cluster: ProcessCluster): Promise<void> {
  for (const name of names) {
    const node = cluster.processes.get(name);
    console.log(
      `# ${name} status ${JSON.stringify(await cluster.status(name))} exit ${JSON.stringify(node?.exit)}`,
    );
    for (const line of node?.output.slice(-20) ?? []) console.log(`#   ${line}`);
  }
}
