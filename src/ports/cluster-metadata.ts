/**
 * The cluster metadata port: the replicated member list, departures, tombstones and settings as
 * the cluster tasks (src/cluster) and the HTTP layer (src/admin) read them, and the commands
 * that change them (proposed through the log like any database command). The SQLite adapter
 * (src/adapters/sqlite/cluster-catalog.ts) implements it.
 *
 * Contract: reads are local (this member's applied state); `listen` listeners run inside the
 * apply loop after every applied cluster command and after a snapshot restore — quick, no throw.
 *
 * @example
 * ```ts
 * const data = database.encodeCommand({ kind: "cluster", op: "member-leave", raftId: "n3", force: false });
 * await runtime.propose(data, { forward: true });
 * metadata.departures(); // [{ raftId: "n3", force: false, askedAtIndex: 42 }]
 * ```
 */

/** A member as the cluster records it. */
export interface MemberRecord {
  /** The short name (the part of the node name before `@`): the member's Raft id. */
  readonly raftId: string;
  /** The permanent id of the member's data directory (32 hex digits). */
  readonly nodeId: string;
  /** `name@host`: what the transport authenticates. */
  readonly nodeName: string;
  readonly clusterHost: string;
  readonly clusterPort: number;
  /** Where its HTTP API answers (`http://host:port`), or null when unknown. */
  readonly httpUrl: string | null;
  readonly role: "voter" | "standby";
  readonly neverPrimary: boolean;
  /** 0–100: a healthy, caught-up voter with a higher priority takes the primary role. */
  readonly priority: number;
  /** 1–9: its network segment (failure domain). */
  readonly segment: number;
  /** Position in the configured static member list, or null for a joiner. */
  readonly configuredPosition: number | null;
}

/** A member row: its record, whether it finished joining, and where it is listed. */
export interface CatalogMember extends MemberRecord {
  /** `joining` until the primary made it a full member (voter, or caught-up standby). */
  readonly state: "joining" | "active";
  readonly position: number;
}

/** A departure an operator asked for (`leave`, `force-leave`), not yet carried out. */
export interface Departure {
  readonly raftId: string;
  readonly force: boolean;
  readonly askedAtIndex: number;
}

/** A node force-removed from the cluster: it may not come back under its old identity. */
export interface RemovedNode {
  readonly nodeId: string;
  readonly raftId: string;
  readonly nodeName: string;
  readonly removedAtIndex: number;
}

/** Cluster-wide settings as stored (null: the node's configured default applies). */
export interface ClusterSettings {
  readonly syncTimeoutMs: number | null;
  readonly recoveryMessage: string | null;
  readonly tokenSha256: string | null;
  readonly tokenSealed: Uint8Array | null;
}

/** A command that changes the cluster metadata. */
export type ClusterCommand = { readonly kind: "cluster" } & (
  | { readonly op: "member-join"; readonly member: MemberRecord }
  | { readonly op: "member-announce"; readonly member: MemberRecord }
  | { readonly op: "member-active"; readonly raftId: string }
  | { readonly op: "member-leave"; readonly raftId: string; readonly force: boolean }
  | { readonly op: "member-remove"; readonly raftId: string }
  | {
      readonly op: "settings-set";
      readonly settings: { readonly syncTimeoutMs?: number; readonly recoveryMessage?: string };
    }
  | { readonly op: "token-set"; readonly tokenSha256: string; readonly sealed: Uint8Array | null }
);

/** The replicated cluster metadata as this member has applied it. */
export interface ClusterMetadata {
  /** Members in list order: the configured order first, then joiners in join order. */
  members(): readonly CatalogMember[];
  departures(): readonly Departure[];
  removed(): readonly RemovedNode[];
  settings(): ClusterSettings;
  /** Calls `listener` after each applied cluster change and after a restore; returns its remover. */
  listen(listener: () => void): () => void;
}
