/**
 * The cluster's own metadata inside the replicated database, changed only by `kind: "cluster"`
 * commands (cluster-commands.ts): the member list (addresses, role, preferences, order, join
 * progress), pending departures, tombstones of force-removed nodes, and cluster-wide settings
 * (sync timeout, recovery message, the API token's hash and sealed copy). Being replicated, every
 * member shows the same list in the same order and agrees on the settings, and a joiner gets it
 * all with the snapshot.
 *
 * The Raft membership (voters/learners) stays the truth of who votes; these tables say who a
 * member is and what an operator asked for. The primary's membership reconciler
 * (src/cluster/membership-reconciler.ts) turns the asked-for into Raft membership changes.
 *
 * @example
 * ```ts
 * const catalog = new ClusterCatalog(db);
 * catalog.apply({ kind: "cluster", op: "member-join", member }, 42); // { ok: true, results: [] }
 * catalog.members(); // [{ ...member, state: "joining", position: 1000 }]
 * ```
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type {
  CatalogMember,
  ClusterSettings,
  Departure,
  MemberRecord,
  RemovedNode,
} from "../../ports/cluster-metadata.ts";
import type { ClusterCommand, ClusterSettingsUpdate } from "./cluster-commands.ts";
import { StatementCache } from "./statement-cache.ts";

const schemaSql = `
CREATE TABLE IF NOT EXISTS _conclave_members (
  raft_id TEXT PRIMARY KEY,
  node_id TEXT NOT NULL UNIQUE,
  record TEXT NOT NULL,
  state TEXT NOT NULL,
  position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _conclave_departures (
  raft_id TEXT PRIMARY KEY,
  force INTEGER NOT NULL,
  asked_at_index INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _conclave_removed (
  node_id TEXT PRIMARY KEY,
  raft_id TEXT NOT NULL,
  node_name TEXT NOT NULL,
  removed_at_index INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _conclave_settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`;

/** Positions of joiners start here, after any configured static list. */
const joinerPositionMin = 1000;

/** Creates the tables when missing (the same DDL on every member, so files stay identical). */
export function createClusterSchema(db: DatabaseSync): void {
  db.exec(schemaSql);
}

/** The outcome of a cluster command (the same on every member). */
export type CatalogResult =
  | { readonly ok: true; readonly results: readonly never[] }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

/** Reads and changes the cluster tables of one connection. See the module comment. */
export class ClusterCatalog {
  readonly #statements: StatementCache;
  /**
   * settings() as last read: every HTTP request checks the token hash and every write reads the
   * sync timeout, and the table changes only through apply() (cleared there) or a restore.
   */
  #settings: ClusterSettings | null = null;

  constructor(db: DatabaseSync) {
    this.#statements = new StatementCache(db);
  }

  /** Uses a new connection (after a snapshot restore). */
  attach(db: DatabaseSync): void {
    this.#statements.attach(db);
    this.#settings = null;
  }

  #sql(text: string): StatementSync {
    return this.#statements.get(text);
  }

  /** Applies one cluster command inside the entry's transaction. */
  apply(command: ClusterCommand, index: number): CatalogResult {
    // Cleared before and after: the entry may still be rolled back after apply returns.
    this.#settings = null;
    try {
      return this.#apply(command, index);
    } finally {
      this.#settings = null;
    }
  }

  #apply(command: ClusterCommand, index: number): CatalogResult {
    switch (command.op) {
      case "member-join":
        return this.#upsertMember(command.member, "joining");
      case "member-announce":
        return this.#upsertMember(command.member, "active");
      case "member-active":
        return this.#markActive(command.raftId);
      case "member-leave":
        this.#sql(
          "INSERT OR REPLACE INTO _conclave_departures (raft_id, force, asked_at_index) VALUES (?, ?, ?)",
        ).run(command.raftId, command.force ? 1 : 0, index);
        return done();
      case "member-remove":
        return this.#remove(command.raftId, index);
      case "settings-set":
        return this.#setSettings(command.settings);
      case "token-set":
        this.#setSetting("token_sha256", command.tokenSha256);
        this.#setSetting(
          "token_sealed",
          command.sealed === null ? null : Buffer.from(command.sealed).toString("base64"),
        );
        return done();
    }
  }

  /**
   * A join (`joining`) or an announce (a member stating its own record; new rows are `active`,
   * as bootstrap members are voters already). Refused for a tombstoned node id or a name held by
   * another node id; a known row keeps its state and position.
   */
  #upsertMember(member: MemberRecord, stateIfNew: CatalogMember["state"]): CatalogResult {
    const removed = this.removed().find((node) => node.nodeId === member.nodeId);
    if (removed !== undefined) {
      return refused(
        "CONCLAVE_MEMBER_REMOVED",
        `node ${member.nodeName} (id ${member.nodeId}) was force-removed from this cluster (entry ${removed.removedAtIndex}); it cannot come back under its old identity: stop it, wipe its data directory and join again`,
      );
    }
    const existing = this.#sql(
      "SELECT node_id, state, position FROM _conclave_members WHERE raft_id = ?",
    ).get(member.raftId) as { node_id: string; state: string; position: number } | undefined;
    if (existing !== undefined && existing.node_id !== member.nodeId) {
      return refused(
        "CONCLAVE_MEMBER_NAME_TAKEN",
        `the name "${member.raftId}" belongs to another member of this cluster (node id ${existing.node_id}); pick another node name, or remove that member first (conclave force-leave)`,
      );
    }
    const sameNode = this.#sql("SELECT raft_id FROM _conclave_members WHERE node_id = ?").get(
      member.nodeId,
    ) as { raft_id: string } | undefined;
    if (sameNode !== undefined && sameNode.raft_id !== member.raftId) {
      return refused(
        "CONCLAVE_MEMBER_RENAMED",
        `node id ${member.nodeId} is already a member as "${sameNode.raft_id}"; a node keeps its name (remove it, wipe its data directory and join under the new name)`,
      );
    }
    const position = existing?.position ?? member.configuredPosition ?? this.#nextJoinerPosition();
    this.#sql(
      "INSERT OR REPLACE INTO _conclave_members (raft_id, node_id, record, state, position) VALUES (?, ?, ?, ?, ?)",
    ).run(member.raftId, member.nodeId, JSON.stringify(member), existing?.state ?? stateIfNew, position);
    return done();
  }

  #nextJoinerPosition(): number {
    const row = this.#sql("SELECT max(position) AS p FROM _conclave_members").get() as { p: number | null };
    return Math.max(joinerPositionMin, (row.p ?? 0) + 1);
  }

  #markActive(raftId: string): CatalogResult {
    const { changes } = this.#sql("UPDATE _conclave_members SET state = 'active' WHERE raft_id = ?").run(
      raftId,
    );
    return Number(changes) === 1 ? done() : notAMember(raftId);
  }

  /** The member is out of the Raft membership: its rows go; a forced departure leaves a tombstone. */
  #remove(raftId: string, index: number): CatalogResult {
    const departure = this.departures().find((entry) => entry.raftId === raftId);
    const member = this.members().find((entry) => entry.raftId === raftId);
    if (departure?.force === true && member !== undefined) {
      this.#sql(
        "INSERT OR REPLACE INTO _conclave_removed (node_id, raft_id, node_name, removed_at_index) VALUES (?, ?, ?, ?)",
      ).run(member.nodeId, raftId, member.nodeName, index);
    }
    this.#sql("DELETE FROM _conclave_departures WHERE raft_id = ?").run(raftId);
    this.#sql("DELETE FROM _conclave_members WHERE raft_id = ?").run(raftId);
    return done();
  }

  #setSettings(settings: ClusterSettingsUpdate): CatalogResult {
    if (settings.syncTimeoutMs !== undefined)
      this.#setSetting("sync_timeout_ms", String(settings.syncTimeoutMs));
    if (settings.recoveryMessage !== undefined) {
      this.#setSetting("recovery_message", settings.recoveryMessage === "" ? null : settings.recoveryMessage);
    }
    return done();
  }

  #setSetting(name: string, value: string | null): void {
    if (value === null) this.#sql("DELETE FROM _conclave_settings WHERE name = ?").run(name);
    else this.#sql("INSERT OR REPLACE INTO _conclave_settings (name, value) VALUES (?, ?)").run(name, value);
  }

  /** Members in list order (configured order first, then joiners in join order). */
  members(): CatalogMember[] {
    const rows = this.#sql(
      "SELECT record, state, position FROM _conclave_members ORDER BY position, raft_id",
    ).all() as {
      record: string;
      state: CatalogMember["state"];
      position: number;
    }[];
    return rows.map((row) => ({
      ...(JSON.parse(row.record) as MemberRecord),
      state: row.state,
      position: row.position,
    }));
  }

  departures(): Departure[] {
    const rows = this.#sql(
      "SELECT raft_id, force, asked_at_index FROM _conclave_departures ORDER BY asked_at_index",
    ).all() as {
      raft_id: string;
      force: number;
      asked_at_index: number;
    }[];
    return rows.map((row) => ({
      raftId: row.raft_id,
      force: row.force === 1,
      askedAtIndex: row.asked_at_index,
    }));
  }

  removed(): RemovedNode[] {
    const rows = this.#sql(
      "SELECT node_id, raft_id, node_name, removed_at_index FROM _conclave_removed ORDER BY removed_at_index",
    ).all() as {
      node_id: string;
      raft_id: string;
      node_name: string;
      removed_at_index: number;
    }[];
    return rows.map((row) => ({
      nodeId: row.node_id,
      raftId: row.raft_id,
      nodeName: row.node_name,
      removedAtIndex: row.removed_at_index,
    }));
  }

  settings(): ClusterSettings {
    this.#settings ??= this.#readSettings();
    return this.#settings;
  }

  #readSettings(): ClusterSettings {
    const rows = this.#sql("SELECT name, value FROM _conclave_settings").all() as {
      name: string;
      value: string;
    }[];
    const value = (name: string): string | null => rows.find((row) => row.name === name)?.value ?? null;
    const syncTimeout = value("sync_timeout_ms");
    const sealed = value("token_sealed");
    return {
      syncTimeoutMs: syncTimeout === null ? null : Number(syncTimeout),
      recoveryMessage: value("recovery_message"),
      tokenSha256: value("token_sha256"),
      tokenSealed: sealed === null ? null : new Uint8Array(Buffer.from(sealed, "base64")),
    };
  }
}

function done(): CatalogResult {
  return { ok: true, results: [] };
}

function refused(code: string, message: string): CatalogResult {
  return { ok: false, error: { code, message } };
}

function notAMember(raftId: string): CatalogResult {
  return refused("CONCLAVE_MEMBER_UNKNOWN", `"${raftId}" is not in the cluster's member list`);
}
