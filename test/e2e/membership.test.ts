/**
 * Operating a cluster with the real CLI against real node processes: grow a cluster from one
 * node to five while writes go on (no acknowledged write lost, every member ends with the same
 * data), remove a dead member (and its old identity stays out), let a member leave by itself,
 * refuse a removal that would break quorum, and the CLI's plain errors for bad arguments, an unreachable node and refusals.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { cli } from "./cli-process.ts";
import { ProcessCluster, waitFor } from "./node-processes.ts";

interface StatusView {
  primary: string | null;
  voters: number;
  quorum: number;
  failuresTolerated: number;
  warnings: string[];
  members: {
    name: string;
    raftId: string;
    state: string;
    votes: boolean;
    lag: number | null;
    clockOffsetMs: number | null;
  }[];
}

describe("growing and shrinking a cluster with the CLI", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  const endpoint = (name: string) => `http://127.0.0.1:${cluster.spec(name).httpPort}`;
  const address = (name: string) => `${name}@127.0.0.1:${cluster.spec(name).clusterPort}`;
  const status = async (name: string): Promise<StatusView> => {
    const result = await cli(["status", "--json", "--endpoint", endpoint(name)]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as StatusView;
  };
  const acknowledged: string[] = [];

  before(async () => {
    cluster = await ProcessCluster.create(5);
    cluster.start("n1", { bootstrapAlone: true });
    await waitFor("n1 to be primary", 20_000, async () => (await cluster.status("n1"))?.state === "PRIMARY");
  });
  after(async () => cluster.killAll());

  it("grows from 1 to 5 voters while writes go on, losing no acknowledged write", async () => {
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 100_000; i++) {
        const response = await cluster.put("n1", `grow/${i}`, `v${i}`).catch(() => null);
        if (response?.ok === true) acknowledged.push(`grow/${i}`);
        else await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      for (const name of ["n2", "n3", "n4", "n5"]) {
        cluster.start(name, { joiner: true });
        await waitFor(`${name} to serve HTTP`, 15_000, async () => (await cluster.status(name)) !== null);
        assert.equal((await cluster.status(name))?.state, "STANDBY");
        const ready = await fetch(`${endpoint(name)}/health/ready`);
        assert.equal(ready.status, 503, "a standby that has not joined is not ready");
        assert.match(((await ready.json()) as { reason: string }).reason, /not a member of a cluster/);
        const joined = await cli(["join", address("n1"), "--endpoint", endpoint(name)]);
        assert.equal(joined.code, 0, joined.stderr);
        assert.match(joined.stdout, /joined the cluster of n1@127\.0\.0\.1/);
        await waitFor(`${name} to become a voter`, 30_000, async () => {
          const view = await status("n1");
          const row = view.members.find((member) => member.raftId === name);
          return row?.votes === true && row.state === "SECONDARY";
        });
      }
    } finally {
      writing = false;
      await writer;
    }
    const view = await status("n3");
    assert.deepEqual(
      view.members.map((member) => member.raftId),
      ["n1", "n2", "n3", "n4", "n5"],
      "members are listed in join order on every node",
    );
    assert.equal(view.voters, 5);
    assert.equal(view.quorum, 3);
    assert.equal(view.failuresTolerated, 2);
    assert.equal(view.primary, "n1@127.0.0.1");
    for (const member of view.members) {
      if (member.raftId !== "n3")
        assert.ok(
          member.clockOffsetMs !== null && Math.abs(member.clockOffsetMs) < 500,
          `${member.name} has a measured clock offset`,
        );
    }
    assert.ok(
      acknowledged.length > 20,
      `writes went on during the joins (${acknowledged.length} acknowledged)`,
    );
    const node = await cli(["node", "--endpoint", endpoint("n4")]);
    assert.equal(node.code, 0, node.stderr);
    const details = JSON.parse(node.stdout) as {
      state: string;
      storage: { usedBytes: number; freeBytes: number; lastIndex: number };
      apply: { lag: number };
      transport: { peers: { id: string; reachable: boolean }[] };
      memory: { rssBytes: number; heapUsedBytes: number };
    };
    assert.ok(
      details.storage.usedBytes > 0 && details.storage.freeBytes > 0 && details.storage.lastIndex > 0,
    );
    assert.deepEqual(
      details.transport.peers.map((peer) => peer.id).sort(),
      ["n1", "n2", "n3", "n5"],
      "n4's transport peers are the other members, learned from the replicated member list",
    );
    const text = await cli(["status", "--endpoint", endpoint("n2")]);
    assert.match(
      text.stdout,
      /primary: n1@127\.0\.0\.1 {3}term: \d+ {3}voters: 5 {3}quorum: 3 {3}survives 2 failures/,
    );
    assert.match(text.stdout, /n5@127\.0\.0\.1 +voter +SECONDARY/);
    // Every acknowledged write is on every member (read locally once all have applied it).
    const last = acknowledged.at(-1) as string;
    for (const name of ["n1", "n2", "n3", "n4", "n5"]) {
      await waitFor(
        `${name} to apply the last write`,
        15_000,
        async () => (await cluster.get(name, last, "local")).status === 200,
      );
      for (const key of acknowledged.filter((_, index) => index % 7 === 0)) {
        assert.equal((await cluster.get(name, key, "local")).status, 200, `${key} on ${name}`);
      }
    }
  });

  it("removes a dead member; its old identity is refused; the even count is warned about", async () => {
    cluster.signal("n5", "SIGKILL");
    await cluster.node("n5").exited;
    await waitFor(
      "n5 to be seen DOWN",
      10_000,
      async () => (await status("n1")).members.find((row) => row.raftId === "n5")?.state === "DOWN",
    );
    const removed = await cli(["force-leave", "n5", "--endpoint", endpoint("n2")]);
    assert.equal(removed.code, 0, removed.stderr);
    await waitFor(
      "n5 to leave the member list",
      15_000,
      async () => !(await status("n1")).members.some((row) => row.raftId === "n5"),
    );
    const view = await status("n1");
    assert.equal(view.voters, 4);
    assert.match(view.warnings.join("\n"), /4 voters: an even count/);
    // The cluster still takes writes.
    assert.equal((await cluster.put("n2", "after-removal", "yes")).status, 200);
    // n5 restarted with its old data directory cannot join back.
    cluster.start("n5", { joiner: true });
    await waitFor("n5 to serve HTTP", 15_000, async () => (await cluster.status("n5")) !== null);
    const back = await cli(["join", address("n1"), "--endpoint", endpoint("n5"), "--timeout-ms", "10000"]);
    assert.equal(back.code, 1);
    assert.match(back.stderr, /force-removed.*wipe its data directory/);
    assert.doesNotMatch(back.stderr, /\n\s+at /, "no stack trace");
  });

  it("a member leaves by itself: out of the membership, it stops being ready", async () => {
    const left = await cli(["leave", "--endpoint", endpoint("n4")]);
    assert.equal(left.code, 0, left.stderr);
    assert.match(left.stdout, /n4@127\.0\.0\.1 is leaving/);
    await waitFor("n4 to leave the member list", 15_000, async () => {
      const view = await status("n1");
      return view.voters === 3 && !view.members.some((row) => row.raftId === "n4");
    });
    await waitFor(
      "n4 to stop being ready",
      10_000,
      async () => (await fetch(`${endpoint("n4")}/health/ready`)).status === 503,
    );
    assert.equal((await cluster.put("n1", "after-leave", "yes")).status, 200);
  });

  it("refuses a removal that would break quorum, with the reason, unless --force", async () => {
    cluster.signal("n3", "SIGKILL");
    await waitFor("n3 to be seen DOWN", 10_000, async () => {
      const rows = (await status("n1")).members;
      return rows.find((row) => row.raftId === "n3")?.state === "DOWN";
    });
    const refused = await cli(["force-leave", "n2", "--endpoint", endpoint("n1")]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /would leave 2 voters needing 2 for a quorum, but only 1 are reachable \(down: n3@127\.0\.0\.1\).*--force/,
    );
    assert.ok(
      (await status("n1")).members.some((row) => row.raftId === "n2"),
      "n2 is still a member",
    );
  });

  it("fails plainly on bad arguments, an unreachable node, an unknown member", async () => {
    const unknown = await cli(["set-primary", "n9", "--endpoint", endpoint("n1")]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /"n9" is not a member of this cluster/);
    const wrongToken = await cli(["status", "--endpoint", endpoint("n1"), "--token", "not-the-token-0000"]);
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /the token was refused.*--token, --token-file or CONCLAVE_TOKEN/);
    const unreachable = await cli(["status", "--endpoint", "http://127.0.0.1:1"]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach the node at http:\/\/127\.0\.0\.1:1/);
    const badTarget = await cli(["join", "not a name", "--endpoint", endpoint("n2")]);
    assert.equal(badTarget.code, 1);
    assert.match(badTarget.stderr, /join target/);
    const missing = await cli(["force-leave"]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /missing required argument/);
    for (const result of [unknown, wrongToken, unreachable, badTarget, missing])
      assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
});
