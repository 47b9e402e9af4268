/**
 * What the bench needs from a running cluster, whichever system it is: its members' endpoints,
 * who leads, the server PIDs (for CPU, disk and memory figures), and kill/restart of one member.
 */
import type { SystemName } from "./drivers.ts";
import type { Endpoint } from "./http-client.ts";

export interface BenchCluster {
  readonly system: SystemName;
  /** Number of members. */
  readonly size: number;
  /** Starts every member on fresh temp directories; resolves once a leader serves. */
  start(): Promise<void>;
  /** Each member's HTTP endpoint (with auth headers when the member wants them). */
  endpoints(): Endpoint[];
  /** Index of the member that leads now, agreed by the members that answer; null when none. */
  leader(): Promise<number | null>;
  /** PIDs of the running members. */
  pids(): number[];
  /** PID of member `member`, null when it is not running. */
  pid(member: number): number | null;
  /** SIGKILL of member `member`. */
  kill(member: number): Promise<void>;
  /** Starts member `member` again on its data directory; resolves when it serves again. */
  restart(member: number): Promise<void>;
  /** Kills every member and removes the temp directories. */
  stop(): Promise<void>;
  /**
   * Durable writes and log bytes so far, summed over the running members, from their metrics
   * (etcd: WAL fsyncs + backend commits, WAL bytes; Conclave: the log's and hard state's O_DSYNC
   * writes and fsyncs, their bytes); null when a member does not answer.
   */
  durableCounters(): Promise<DurableCounters | null>;
}

/** Deadline for a cluster (or one member) to come up. */
export const clusterStartMsMax = 60_000;
/** Deadline of one control-plane request (status, health). */
export const controlRequestMs = 1000;

/** GET or POST `url` for the control plane; the parsed JSON, or null on any failure. */
export async function controlJson(
  url: string,
  init: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<unknown> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(controlRequestMs) });
    return response.ok ? ((await response.json()) as unknown) : null;
  } catch {
    return null;
  }
}

/** Durable writes (fsyncs or O_DSYNC writes) and the log bytes they wrote, summed over members. */
export interface DurableCounters {
  readonly writes: number;
  readonly bytes: number;
}

/** GET `url` as text (a Prometheus scrape); null on any failure. */
export async function controlText(url: string, headers: Record<string, string> = {}): Promise<string | null> {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(controlRequestMs) });
    return response.ok ? await response.text() : null;
  } catch {
    return null;
  }
}

/** Sum of the unlabelled samples named `names` in Prometheus text; null when one is missing. */
export function sumSamples(text: string, names: readonly string[]): number | null {
  let sum = 0;
  for (const name of names) {
    const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    const value = match === null ? Number.NaN : Number(match[1]);
    if (!Number.isFinite(value)) return null;
    sum += value;
  }
  return sum;
}

/** Scrapes every member and sums `writes` and `bytes` samples; null when a member does not answer. */
export async function scrapeDurableCounters(
  members: readonly { url: string; headers: Record<string, string> }[],
  writes: readonly string[],
  bytes: readonly string[],
): Promise<DurableCounters | null> {
  const texts = await Promise.all(members.map((member) => controlText(member.url, member.headers)));
  let total = { writes: 0, bytes: 0 };
  for (const text of texts) {
    if (text === null) return null;
    const w = sumSamples(text, writes);
    const b = sumSamples(text, bytes);
    if (w === null || b === null) return null;
    total = { writes: total.writes + w, bytes: total.bytes + b };
  }
  return total;
}
