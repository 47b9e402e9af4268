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
