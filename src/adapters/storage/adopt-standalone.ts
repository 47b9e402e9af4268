/**
 * A standalone node started without a name runs under the Raft id `standalone`, and its stored
 * Raft state says so: its membership is `voters: ["standalone"]`. When the operator later gives it
 * a name (`n1@host`, to make it the first member of a cluster, keeping its data), its Raft id
 * becomes `n1`, which is not a member of its own stored cluster: it would wait as a standby
 * forever. Before the node starts, the stored membership is therefore moved to the new id once
 * ("adopted").
 *
 * How: one configuration entry `voters: [<new id>]` is appended after the last stored entry, in
 * the hard state's term, and synced. Raft takes a configuration from the latest configuration
 * entry of the log, committed or not, so the node starts as the only voter of a cluster named by
 * its new id, elects itself and commits everything it held (the adoption entry too) with the
 * no-op of its new term. The caller may have state-machine commands appended just before that
 * entry, to retire the old id from the application's own records (Conclave removes the
 * `standalone` row of its replicated member list, so that the node can announce itself under its
 * new name): they go through the log like any command, so every replica that later replays this
 * log applies them too. Snapshots and the state machine's files are not touched.
 *
 * Why this is safe only for `voters: ["standalone"], learners: []`: a one-node cluster's log
 * exists on no other node, so no other node can hold a conflicting entry at that index, and
 * "standalone" and the new id are the same process with the same log — the disjoint majorities
 * that forbid replacing a voter in one step (Raft §4.1) cannot both exist, as the old id never
 * runs again (the caller records the name right after, and a named node is never started
 * unnamed). Any other stored membership is refused with `CONCLAVE_MEMBERSHIP_MISMATCH`.
 *
 * Crash safety: the only write is one batch of appended entries made durable by one sync; the log
 * a crash leaves is a prefix of the log after that sync (src/ports/storage.ts). The membership
 * entry comes last, so a prefix without it leaves the membership unadopted and the next start
 * appends the whole batch again (the commands must be idempotent); a log with it holds the
 * commands too. The caller records the name in identity.json only after this resolves. A start
 * that finds the adoption already there (a crash before the name was recorded) has nothing left
 * to do but record the name.
 *
 * @example
 * ```ts
 * const outcome = await adoptUnnamedStandalone({
 *   dataDir: "/var/lib/conclave", nodeName: "n1@10.0.0.5", raftId: "n1", unnamedRaftId: "standalone",
 * });
 * if (outcome.kind === "adopted") logger.info(outcome, "adopted the standalone node's data");
 * ```
 */
import { readNodeIdentity, refuseUnnamingNamedNode } from "../../config/node-identity.ts";
import { assert } from "../../lib/assert.ts";
import { ConclaveError } from "../../lib/errors.ts";
import type { RaftStorage, RecoveredState } from "../../ports/storage.ts";
import type { Entry, Membership, NodeId } from "../../raft/types.ts";
import { acquireDataDirLock } from "./data-dir-lock.ts";
import { createFileStorage } from "./file-storage.ts";

/** What {@link adoptStandaloneMembership} found or did. */
export type StandaloneAdoption =
  /** Nothing to adopt: no Raft state yet, or a data directory that is not an unnamed standalone one. */
  | { readonly kind: "none" }
  /** The stored membership already names this id (an earlier adoption, or the unnamed node as it was). */
  | { readonly kind: "in-place" }
  /** The membership entry was appended and synced. */
  | {
      readonly kind: "adopted";
      readonly fromId: NodeId;
      readonly toId: NodeId;
      /** Index and term of the appended configuration entry. */
      readonly index: number;
      readonly term: number;
    };

/** The ids of an adoption: the one the data was stored under and the one the node now runs as. */
export interface AdoptionIds {
  /** The Raft id of an unnamed standalone node (`standalone`). */
  readonly fromId: NodeId;
  /** The Raft id the node starts with now (equal to `fromId` for an unnamed start: a check only). */
  readonly toId: NodeId;
}

/** Bounds what an adoption appends besides its membership entry. */
const commandsBeforeMax = 16;

/**
 * Opens `storage` (not yet opened), moves a stored one-node membership `voters: [fromId]` to
 * `voters: [toId]` durably, appending `commandsBefore` (idempotent state-machine commands) just
 * before the membership entry, and closes it. `location` names the data in error messages.
 *
 * @throws ConclaveError `CONCLAVE_MEMBERSHIP_MISMATCH` when the stored membership is anything
 *   else than `[fromId]` or `[toId]` alone; storage errors as `open` and `sync` throw them
 */
export async function adoptStandaloneMembership(
  storage: RaftStorage,
  ids: AdoptionIds,
  location: string,
  commandsBefore: readonly Uint8Array[] = [],
): Promise<StandaloneAdoption> {
  assert(commandsBefore.length <= commandsBeforeMax, "too many commands for an adoption");
  try {
    const recovered = await storage.open();
    const membership = latestMembership(recovered);
    if (membership === null) return { kind: "none" };
    if (isSoleVoter(membership, ids.toId)) return { kind: "in-place" };
    if (!isSoleVoter(membership, ids.fromId)) throw mismatch(membership, ids, location);
    const last = recovered.entries.at(-1) ?? recovered.snapshot;
    assert(last !== null && last !== undefined, "a stored membership without an entry or a snapshot");
    // The hard state's term is at least the last entry's (reconcileHardState ensures it); staying in
    // it keeps the log's terms non-decreasing and needs no change of the hard state.
    const term = Math.max(recovered.hardState?.term ?? 0, last.term);
    const commands: Entry[] = commandsBefore.map((data, position) => ({
      kind: "command",
      index: last.index + 1 + position,
      term,
      data,
    }));
    const index = last.index + 1 + commands.length;
    const adopted: Membership = { voters: [ids.toId], learners: [] };
    storage.append([...commands, { kind: "config", index, term, membership: adopted }]);
    await storage.sync();
    return { kind: "adopted", fromId: ids.fromId, toId: ids.toId, index, term };
  } finally {
    await storage.close();
  }
}

/** The membership in force at the end of the stored log, or null when nothing is stored. */
export function latestMembership(recovered: RecoveredState): Membership | null {
  for (let position = recovered.entries.length - 1; position >= 0; position--) {
    const entry = recovered.entries[position];
    if (entry?.kind === "config") return entry.membership;
  }
  return recovered.snapshot?.membership ?? null;
}

function isSoleVoter(membership: Membership, id: NodeId): boolean {
  return membership.voters.length === 1 && membership.voters[0] === id && membership.learners.length === 0;
}

function describe(membership: Membership): string {
  const learners = membership.learners.length === 0 ? "" : `, learners [${membership.learners.join(", ")}]`;
  return `voters [${membership.voters.join(", ")}]${learners}`;
}

function mismatch(membership: Membership, ids: AdoptionIds, location: string): ConclaveError {
  const stored = describe(membership);
  const details = { location, storedMembership: membership, fromId: ids.fromId, toId: ids.toId };
  if (ids.toId === ids.fromId) {
    const owner = isSoleVoter(membership, membership.voters[0] ?? "") ? membership.voters[0] : undefined;
    const fix =
      owner === undefined
        ? "Start it with the node.name of that cluster's member, or give this node another data directory (node.data_dir)."
        : `A start as "${owner}" was interrupted before it recorded the name: start it with node.name = "${owner}@<host>" to finish.`;
    return new ConclaveError(
      "CONCLAVE_MEMBERSHIP_MISMATCH",
      `The data in ${location} belongs to a cluster with ${stored}, but this node was started without a name (Raft id "${ids.fromId}"), so it is not a member and would wait forever. ${fix}`,
      details,
    );
  }
  return new ConclaveError(
    "CONCLAVE_MEMBERSHIP_MISMATCH",
    `The data in ${location} was written by a node without a name, but its stored cluster has ${stored}, not the one-node membership [${ids.fromId}] of a standalone node: it cannot be taken over safely as "${ids.toId}" (other members may hold copies of its log). Start it again without node.name to use it as it is, or give "${ids.toId}" another data directory (node.data_dir) and move the data over through the API.`,
    details,
  );
}

/** Options of {@link adoptUnnamedStandalone}. */
export interface UnnamedStandaloneOptions {
  readonly dataDir: string;
  /** The configured `node.name`, or undefined (an unnamed standalone start). */
  readonly nodeName: string | undefined;
  /** The Raft id this start runs as. */
  readonly raftId: NodeId;
  /** The Raft id of an unnamed standalone node. */
  readonly unnamedRaftId: NodeId;
  /** State-machine commands appended before the membership entry (see the module comment). */
  readonly commandsBefore?: readonly Uint8Array[];
}

/**
 * At start, before identity.json is opened (which records a new name): refuses a named node
 * started without a name, and for a data directory of an unnamed standalone node, under its lock,
 * checks (unnamed start) or adopts (named start) its stored membership; see the module comment.
 *
 * @throws ConclaveError `CONCLAVE_IDENTITY_MISMATCH` (a named node started without a name),
 *   `CONCLAVE_MEMBERSHIP_MISMATCH`, `CONCLAVE_DATA_DIR_LOCKED`, storage errors
 */
export async function adoptUnnamedStandalone(options: UnnamedStandaloneOptions): Promise<StandaloneAdoption> {
  const { dataDir, nodeName, raftId, unnamedRaftId } = options;
  const identity = await readNodeIdentity(dataDir);
  refuseUnnamingNamedNode(dataDir, identity, nodeName);
  if (identity === undefined || identity.nodeName !== null) return { kind: "none" };
  assert(nodeName !== undefined || raftId === unnamedRaftId, "an unnamed start runs as the unnamed id");
  const lock = acquireDataDirLock(dataDir);
  try {
    const storage = createFileStorage(dataDir);
    const ids = { fromId: unnamedRaftId, toId: raftId };
    return await adoptStandaloneMembership(storage, ids, dataDir, options.commandsBefore ?? []);
  } finally {
    lock.release();
  }
}
