/**
 * Locks on leases, etcd's recipe: each contender puts `lock/<name>/<leaseId>` attached to its
 * lease; the owner is the key with the lowest create_revision. A crashed owner stops keeping its
 * lease alive, the primary's `lease-expire` deletes the key, and the next contender owns the lock.
 * This lets an application run a job on one node only.
 *
 * @example
 * ```ts
 * await propose(encodeCommand(lockAcquireCommand("nightly-report", leaseId)));
 * if (isLockOwner(machine.kv, "nightly-report", leaseId)) runReport();
 * ```
 */
import type { KvCommand } from "./commands.ts";
import type { KeyValue, KvStore } from "./kv-store.ts";

/** The key prefix of a lock's contenders. */
export function lockPrefix(name: string): string {
  return `lock/${name}/`;
}

/** The key a lease holds for a lock. Fixed-width so keys sort like lease ids. */
export function lockKey(name: string, leaseId: number): string {
  return `${lockPrefix(name)}${leaseId.toString(16).padStart(16, "0")}`;
}

/** The command that enters `leaseId` as a contender (idempotent: an existing entry keeps its place). */
export function lockAcquireCommand(name: string, leaseId: number): KvCommand {
  const key = lockKey(name, leaseId);
  return {
    kind: "kv",
    op: "txn",
    compare: [{ key, target: "create_revision", operator: "=", value: 0 }],
    success: [{ op: "put", key, value: new Uint8Array(0), lease: leaseId }],
    failure: [],
  };
}

/** The command that withdraws `leaseId` (owner or waiting). */
export function lockReleaseCommand(name: string, leaseId: number): KvCommand {
  return { kind: "kv", op: "delete", key: lockKey(name, leaseId) };
}

/** The owner's key (lowest create_revision under the lock's prefix), or null when nobody holds it. */
export function lockOwner(kv: KvStore, name: string): KeyValue | null {
  let owner: KeyValue | null = null;
  for (const contender of kv.range(lockPrefix(name))) {
    if (owner === null || contender.createRevision < owner.createRevision) owner = contender;
  }
  return owner;
}

/** True when `leaseId` currently owns the lock (as of this member's applied index). */
export function isLockOwner(kv: KvStore, name: string, leaseId: number): boolean {
  return lockOwner(kv, name)?.lease === leaseId;
}
