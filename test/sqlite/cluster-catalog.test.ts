/**
 * The cluster's metadata in the replicated database: members in a stable order, join progress,
 * departures, tombstones that keep a force-removed node out, settings, and restore.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClusterOperation, MemberRecord } from "../../src/adapters/sqlite/cluster-commands.ts";
import { encodeCommand } from "../../src/adapters/sqlite/commands.ts";
import { openMachine } from "./fixture.ts";

function member(raftId: string, overrides: Partial<MemberRecord> = {}): MemberRecord {
  return {
    raftId,
    nodeId: raftId.padEnd(32, "0").replace(/[^0-9a-f]/g, "a"),
    nodeName: `${raftId}@127.0.0.1`,
    clusterHost: "127.0.0.1",
    clusterPort: 4370,
    httpUrl: "http://127.0.0.1:4380",
    role: "voter",
    neverPrimary: false,
    priority: 0,
    segment: 1,
    configuredPosition: null,
    ...overrides,
  };
}

function cluster(operation: ClusterOperation): Uint8Array {
  return encodeCommand({ kind: "cluster", ...operation });
}

describe("cluster catalog", () => {
  it("lists configured members in their configured order, then joiners in join order", () => {
    const { machine, remove } = openMachine();
    try {
      let index = 0;
      const apply = (operation: ClusterOperation) => machine.apply(cluster(operation), ++index);
      assert.deepEqual(apply({ op: "member-join", member: member("n9") }), { ok: true, results: [] });
      assert.equal(
        apply({ op: "member-announce", member: member("n2", { configuredPosition: 1 }) }).ok,
        true,
      );
      assert.equal(
        apply({ op: "member-announce", member: member("n1", { configuredPosition: 0 }) }).ok,
        true,
      );
      assert.equal(apply({ op: "member-join", member: member("n4") }).ok, true);
      const members = machine.cluster.members();
      assert.deepEqual(
        members.map((entry) => [entry.raftId, entry.state]),
        [
          ["n1", "active"],
          ["n2", "active"],
          ["n9", "joining"],
          ["n4", "joining"],
        ],
      );
      assert.equal(apply({ op: "member-active", raftId: "n9" }).ok, true);
      assert.equal(machine.cluster.members()[2]?.state, "active");
      // A re-announce keeps the state and position, and updates the record.
      apply({ op: "member-announce", member: member("n9", { httpUrl: "http://127.0.0.1:5000" }) });
      assert.deepEqual(
        [machine.cluster.members()[2]?.httpUrl, machine.cluster.members()[2]?.state],
        ["http://127.0.0.1:5000", "active"],
      );
    } finally {
      remove();
    }
  });

  it("refuses a name held by another node id, and a node that changed its name", () => {
    const { machine, remove } = openMachine();
    try {
      machine.apply(cluster({ op: "member-join", member: member("n1") }), 1);
      const taken = machine.apply(
        cluster({ op: "member-join", member: member("n1", { nodeId: "f".repeat(32) }) }),
        2,
      );
      assert.equal(taken.ok, false);
      assert.equal(!taken.ok && taken.error.code, "CONCLAVE_MEMBER_NAME_TAKEN");
      const renamed = machine.apply(
        cluster({ op: "member-join", member: { ...member("n1"), raftId: "n7", nodeName: "n7@127.0.0.1" } }),
        3,
      );
      assert.equal(!renamed.ok && renamed.error.code, "CONCLAVE_MEMBER_RENAMED");
      assert.equal(machine.cluster.members().length, 1);
    } finally {
      remove();
    }
  });

  it("a forced departure leaves a tombstone that refuses the old identity, a plain one does not", () => {
    const { machine, remove } = openMachine();
    try {
      let index = 0;
      const apply = (operation: ClusterOperation) => machine.apply(cluster(operation), ++index);
      apply({ op: "member-join", member: member("n3") });
      apply({ op: "member-join", member: member("n4") });
      apply({ op: "member-leave", raftId: "n3", force: true });
      apply({ op: "member-leave", raftId: "n4", force: false });
      assert.deepEqual(
        machine.cluster.departures().map((entry) => [entry.raftId, entry.force]),
        [
          ["n3", true],
          ["n4", false],
        ],
      );
      apply({ op: "member-remove", raftId: "n3" });
      apply({ op: "member-remove", raftId: "n4" });
      assert.deepEqual(machine.cluster.members(), []);
      assert.deepEqual(machine.cluster.departures(), []);
      assert.deepEqual(
        machine.cluster.removed().map((entry) => entry.raftId),
        ["n3"],
      );
      const back = apply({ op: "member-join", member: member("n3") });
      assert.equal(back.ok, false);
      assert.match(!back.ok ? back.error.message : "", /wipe its data directory/);
      // The same name with a fresh identity (wiped data directory) may join; n4 may come back.
      assert.equal(apply({ op: "member-join", member: member("n3", { nodeId: "e".repeat(32) }) }).ok, true);
      assert.equal(apply({ op: "member-join", member: member("n4") }).ok, true);
    } finally {
      remove();
    }
  });

  it("keeps settings and the token hash, tells listeners, and survives a snapshot restore", async () => {
    const source = openMachine();
    const target = openMachine();
    try {
      let notified = 0;
      source.machine.listenCluster(() => notified++);
      source.machine.apply(cluster({ op: "settings-set", settings: { syncTimeoutMs: 3000 } }), 1);
      source.machine.apply(
        cluster({ op: "token-set", tokenSha256: "a".repeat(64), sealed: new Uint8Array([1, 2, 3]) }),
        2,
      );
      source.machine.apply(cluster({ op: "member-join", member: member("n1") }), 3);
      assert.equal(notified, 3);
      const settings = source.machine.cluster.settings();
      assert.deepEqual(settings, {
        syncTimeoutMs: 3000,
        recoveryMessage: null,
        tokenSha256: "a".repeat(64),
        tokenSealed: new Uint8Array([1, 2, 3]),
      });
      let restoredNotified = 0;
      target.machine.listenCluster(() => restoredNotified++);
      const snapshot = source.machine.snapshot();
      await target.machine.restore(snapshot.chunks, snapshot.sizeBytes);
      assert.equal(restoredNotified, 1);
      assert.deepEqual(target.machine.cluster.settings(), settings);
      assert.deepEqual(target.machine.cluster.members(), source.machine.cluster.members());
    } finally {
      source.remove();
      target.remove();
    }
  });

  it("refuses malformed cluster commands when encoding", () => {
    assert.throws(
      () => encodeCommand({ kind: "cluster", op: "member-join", member: member("bad name!") }),
      /not a valid member name/,
    );
    assert.throws(
      () => encodeCommand({ kind: "cluster", op: "settings-set", settings: { syncTimeoutMs: 5 } }),
      /syncTimeoutMs/,
    );
  });
});
