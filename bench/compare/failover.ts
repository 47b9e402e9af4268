/**
 * Failover, as the etcd harness measures it: an open-loop writer issues 1 put every 10 ms,
 * round-robin over the members, one attempt per put (no client retries, 10 s deadline). After
 * 1 s of steady state the leader gets SIGKILL; the figure is kill → first acknowledgement of a
 * put issued after the kill. The writer runs 1 s more, the killed member is restarted on its
 * data dir, and every acknowledged key is read back (linearizable) from every member.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { BenchCluster } from "./cluster.ts";
import type { KvDriver } from "./drivers.ts";
import type { Endpoint } from "./http-client.ts";
import { makeValue } from "./load.ts";
import { waitFor } from "./processes.ts";
import { round } from "./stats.ts";

/** Builds a driver talking to one member only (index into the endpoints). */
export type DriverFactory = (endpoints: readonly Endpoint[], member: number, timeoutMs: number) => KvDriver;

const writeIntervalMs = 10;
const clientTimeoutMs = 10_000;
const steadyMs = 1000;
const afterAckMs = 1000;
/** Longest wait for the first new write after the kill before the kill counts as failed. */
const newWriteWaitMsMax = 30_000;
const valueBytes = 100;
const readBackAttemptsMax = 20;

interface PutRecord {
  readonly key: string;
  readonly member: number;
  readonly issuedMs: number;
  ackedMs: number | null;
  failedMs: number | null;
  error: string | null;
}

/** The outcome of one leader kill. */
export interface KillResult {
  readonly killedMember: number;
  readonly killToFirstNewAckMs: number | null;
  readonly putsIssued: number;
  readonly acked: number;
  readonly failedFast: number;
  readonly failedSlow: number;
  readonly lostPerMember: number[];
  readonly lost: number;
  readonly unackedButPresent: number;
  readonly restartMs: number;
  readonly errorKinds: string[];
}

async function currentLeader(cluster: BenchCluster): Promise<number> {
  return waitFor(`a ${cluster.system} leader`, 30_000, () => cluster.leader(), 100);
}

function startWriter(writers: KvDriver[], prefix: string, records: PutRecord[], isStopped: () => boolean) {
  const startMs = performance.now();
  return (async () => {
    for (let i = 0; !isStopped(); i++) {
      const key = `${prefix}${String(i).padStart(6, "0")}`;
      const member = i % writers.length;
      const record: PutRecord = {
        key,
        member,
        issuedMs: performance.now(),
        ackedMs: null,
        failedMs: null,
        error: null,
      };
      records.push(record);
      writers[member]?.put(key, makeValue(key, valueBytes)).then(
        () => {
          record.ackedMs = performance.now();
        },
        (error: unknown) => {
          record.failedMs = performance.now();
          record.error = error instanceof Error ? error.message : String(error);
        },
      );
      await delay(Math.max(0, startMs + (i + 1) * writeIntervalMs - performance.now()));
    }
  })();
}

async function readBack(driver: KvDriver, prefix: string): Promise<Map<string, Buffer>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await driver.scan(prefix);
    } catch (error) {
      if (attempt >= readBackAttemptsMax) throw error;
      await delay(250);
    }
  }
}

/** Kills the leader of `cluster` once and measures what the writer saw. */
export async function killOnce(
  cluster: BenchCluster,
  makeDriver: DriverFactory,
  prefix: string,
): Promise<KillResult> {
  const leader = await currentLeader(cluster);
  const endpoints = cluster.endpoints();
  const writers = endpoints.map((_, member) => makeDriver(endpoints, member, clientTimeoutMs));
  await Promise.all(writers.map((writer, member) => writer.put(`${prefix}warm${member}`, Buffer.from("w"))));
  const records: PutRecord[] = [];
  let stopped = false;
  const writer = startWriter(writers, prefix, records, () => stopped);
  await delay(steadyMs);
  const killMs = performance.now();
  await cluster.kill(leader);
  const firstNewAck = (): number | null => {
    const acks = records.filter((r) => r.issuedMs > killMs && r.ackedMs !== null).map((r) => r.ackedMs ?? 0);
    return acks.length === 0 ? null : Math.min(...acks);
  };
  await waitFor("a write acknowledged after the kill", newWriteWaitMsMax, async () => firstNewAck(), 2).catch(
    () => null,
  );
  await delay(afterAckMs);
  stopped = true;
  await writer;
  const restartStartMs = performance.now();
  await cluster.restart(leader);
  const restartMs = performance.now() - restartStartMs;
  // Let stragglers settle: each resolves within the client deadline.
  await waitFor("in-flight puts to settle", clientTimeoutMs + 2000, async () =>
    records.every((r) => r.ackedMs !== null || r.failedMs !== null) ? true : null,
  ).catch(() => null);
  for (const w of writers) w.close();
  return {
    killedMember: leader,
    killToFirstNewAckMs: round((firstNewAck() ?? Number.NaN) - killMs, 1),
    putsIssued: records.length,
    restartMs: Math.round(restartMs),
    ...(await countLost(cluster, makeDriver, prefix, records)),
    ...failures(records),
  };
}

function failures(records: PutRecord[]) {
  const failed = records.filter((r) => r.failedMs !== null);
  return {
    acked: records.filter((r) => r.ackedMs !== null).length,
    failedFast: failed.filter((r) => (r.failedMs ?? 0) - r.issuedMs < 100).length,
    failedSlow: failed.filter((r) => (r.failedMs ?? 0) - r.issuedMs >= 100).length,
    errorKinds: [...new Set(failed.map((r) => (r.error ?? "").slice(0, 70)))].slice(0, 10),
  };
}

async function countLost(
  cluster: BenchCluster,
  makeDriver: DriverFactory,
  prefix: string,
  records: PutRecord[],
) {
  const endpoints = cluster.endpoints();
  const acked = records.filter((r) => r.ackedMs !== null);
  const lostPerMember: number[] = [];
  let unackedButPresent = 0;
  for (let member = 0; member < endpoints.length; member++) {
    const reader = makeDriver(endpoints, member, 15_000);
    const found = await readBack(reader, prefix).finally(() => reader.close());
    const lost = acked.filter((r) => !found.get(r.key)?.equals(makeValue(r.key, valueBytes))).length;
    lostPerMember.push(lost);
    if (member === 0)
      unackedButPresent = records.filter((r) => r.ackedMs === null && found.has(r.key)).length;
  }
  return { lostPerMember, lost: Math.max(0, ...lostPerMember), unackedButPresent };
}
