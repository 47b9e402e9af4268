/**
 * The shape of a validated node configuration, as the code reads it: the file's keys in
 * camelCase, ports with the offset added, member ports resolved. Built by `schema.ts`.
 */
import type { MemberAddress } from "./node-name.ts";
import type { TimingProfileName } from "./timing.ts";

/** `[node]`: who this node is. */
export interface NodeSettings {
  /** `name@host`; `undefined` only in standalone mode. */
  readonly name: string | undefined;
  readonly dataDir: string;
  /** A voter counts for quorum and may become primary; a standby only replicates. */
  readonly role: "voter" | "standby";
  readonly neverPrimary: boolean;
  /** 0–100: among up-to-date voters, a higher priority is preferred as primary. */
  readonly primaryPriority: number;
  /** 1–9: the network segment (data center, failure domain) of this node. */
  readonly segment: number;
  /**
   * "batch": `conclave start` puts its process under Linux's SCHED_BATCH (no wake-up
   * preemption; src/cli/cpu-scheduling.ts); "inherit": the policy it was started with.
   */
  readonly cpuScheduling: "batch" | "inherit";
}

/** A member list entry with its port resolved (`port` from the entry, else this node's cluster port). */
export interface ClusterMember extends MemberAddress {
  readonly port: number;
  /** The canonical `name@host`, as node names are compared. */
  readonly nodeName: string;
}

/** `[cluster]`: the cluster this node belongs to. */
export interface ClusterSettings {
  readonly mode: "standalone" | "cluster";
  readonly id: string | undefined;
  readonly cookie: string | undefined;
  readonly cookieFile: string | undefined;
  /** The static member list, in the configured order (every member shows this order). */
  readonly members: readonly ClusterMember[];
  readonly bootstrap: boolean;
  /** The effective cluster port: the configured port plus `portOffset`. */
  readonly port: number;
  readonly bind: string;
  readonly timing: TimingProfileName;
  readonly syncTimeoutMs: number;
  /**
   * Entries applied between two snapshots of the database (the log before a snapshot, less the
   * last 1,024 entries, is then deleted). Fewer: less log on disk and in memory, more copies.
   */
  readonly snapshotEveryEntries: number;
  /**
   * …or sooner, once the commands applied since the last snapshot hold this many bytes
   * (`snapshot_every_mib`): the log keeps them in memory until then, so this bounds a node's
   * memory when values are large. Less: less memory, more copies of the database.
   */
  readonly snapshotEveryBytes: number;
  /**
   * Milliseconds the entries a member applied may wait in one open SQLite transaction before it
   * commits (`apply_commit_interval_ms`; 0 commits after every batch). The Raft log is the
   * durable record, so a crash loses nothing: the member applies them again. Longer: fewer
   * pages written per write, more entries applied again after a crash.
   */
  readonly applyCommitIntervalMs: number;
  /**
   * Under load (8 or more writes waiting on a member), how long its loop lets input gather
   * before the next log write (`group_commit_ms`; 0 never waits): fewer log writes, messages and
   * wake-ups per request, at up to this much more latency per hop. Requests alone never wait.
   * Default 0 (off): it pays only where the members' cores are saturated (docs/configuration.md).
   */
  readonly groupCommitMs: number;
  /**
   * As the primary, how long to wait at most, once per log write, for the followers' answers to
   * the entries it wrote before the next log write (`commit_wait_ms`; 0 never waits): the next
   * write then commits them, a write's time sooner. Default 1 (docs/configuration.md).
   */
  readonly commitWaitMs: number;
}

/** `[http]`: the HTTP API. */
export interface HttpSettings {
  /** The effective HTTP port: the configured port plus `portOffset`. */
  readonly port: number;
  readonly bind: string;
  readonly tokenFile: string | undefined;
}

/** `[tls]`. */
export interface TlsSettings {
  readonly enabled: boolean;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
  /** Mutual TLS: peers must present a certificate signed by `ca`. */
  readonly requireClientCert: boolean;
}

/** `[log]`. */
export interface LogSettings {
  readonly level: "trace" | "debug" | "info" | "warn" | "error";
  /** Data requests at least this slow are logged at warn with their steps (0: every one). */
  readonly slowRequestMs: number;
  /** Most slow-request lines a second; the rest are counted on the next line. */
  readonly slowRequestLogsPerSecond: number;
}

/** A validated node configuration; file keys in camelCase, ports already offset. */
export interface NodeConfig {
  readonly node: NodeSettings;
  readonly cluster: ClusterSettings;
  readonly http: HttpSettings;
  readonly tls: TlsSettings;
  readonly log: LogSettings;
  readonly portOffset: number;
}
