/**
 * The product promise "an existing standalone node keeps its data when it becomes the first
 * member": a real node runs with `cluster.mode = "standalone"`, writes KV and SQL data, stops
 * (SIGTERM), and is started again in cluster mode as the bootstrap member (`cluster.bootstrap =
 * true`, no member list). It must become primary of its one-node cluster, serve every value it
 * held (linearizable reads) and take new writes. Started without a name, its data is adopted
 * under its new name once (src/adapters/storage/adopt-standalone.ts): a new member can join it,
 * the member list names it only by its new name, and it cannot go back to being unnamed.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { authorizedFetch } from "./api-token.ts";
import { cli } from "./cli-process.ts";
import { type ConfigOverrides, ProcessCluster, waitFor } from "./node-processes.ts";

const keyCount = 5;

describe("a standalone node becomes the first member of a cluster", { timeout: 60_000 }, () => {
  let cluster: ProcessCluster;

  before(async () => {
    cluster = await ProcessCluster.create(3);
  });
  after(async () => {
    await cluster.killAll();
  });

  const url = (name: string): string => `http://127.0.0.1:${cluster.spec(name).httpPort}`;
  const post = (name: string, path: string, body: unknown): Promise<Response> =>
    authorizedFetch(`${url(name)}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });

  const clusterStatus = async (name: string): Promise<{ members: { raftId: string; state: string }[] }> => {
    const response = await authorizedFetch(`${url(name)}/v1/cluster/status`, {
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(response.status, 200);
    return (await response.json()) as { members: { raftId: string; state: string }[] };
  };

  /** The node's own primary status (a one-node cluster), once it reports it. */
  const primaryOf = (name: string): Promise<string> =>
    waitFor(`${name} to be primary`, 10_000, async () => {
      const status = await cluster.status(name);
      return status !== null && status.role === "leader" ? status.raftId : null;
    });

  /** Standalone: write keys and one SQL table, stop cleanly. */
  async function runStandalone(name: string, overrides: ConfigOverrides): Promise<void> {
    cluster.start(name, { standalone: true, ...overrides });
    await primaryOf(name);
    for (let i = 0; i < keyCount; i++) {
      const response = await cluster.put(name, `kept-${i}`, `value-${i}`);
      assert.equal(response.status, 200, `standalone PUT kept-${i}: ${await response.text()}`);
    }
    const created = await post(name, "/v1/sql/execute", {
      statements: [
        { sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)" },
        { sql: "INSERT INTO notes (id, body) VALUES (1, 'written while standalone')" },
      ],
    });
    assert.equal(created.status, 200, await created.text());
    cluster.signal(name, "SIGTERM");
    assert.deepEqual(await cluster.node(name).exited, { code: 0, signal: null });
  }

  /** Cluster mode, bootstrap member: the data written while standalone is all there. */
  async function assertKeptAsFirstMember(name: string): Promise<void> {
    const node = cluster.start(name, { bootstrapAlone: true });
    const leader = await Promise.race([
      primaryOf(name),
      node.exited.then((exit) => {
        throw new Error(`the node exited (${JSON.stringify(exit)}):\n${node.output.join("\n")}`);
      }),
    ]);
    assert.equal(leader, name);
    for (let i = 0; i < keyCount; i++) {
      const response = await cluster.get(name, `kept-${i}`);
      const body = await response.text();
      assert.equal(response.status, 200, `GET kept-${i} in cluster mode: ${body}`);
      assert.equal(body, `value-${i}`);
    }
    const rows = await post(name, "/v1/sql/query", { sql: "SELECT body FROM notes WHERE id = 1" });
    assert.equal(rows.status, 200, `SQL query in cluster mode: ${await rows.clone().text()}`);
    assert.deepEqual(((await rows.json()) as { rows: unknown[] }).rows, [
      { body: "written while standalone" },
    ]);
    const write = await cluster.put(name, "after-becoming-member", "yes");
    assert.equal(write.status, 200, `a write in cluster mode: ${await write.text()}`);
  }

  it("keeps its data when it was standalone under the same node name", async () => {
    await runStandalone("n1", {});
    await assertKeptAsFirstMember("n1");
  });

  // Regression (issue #6): an unnamed standalone node stores the membership { voters:
  // ["standalone"] }. Started in cluster mode as n2, its Raft id is "n2", which was not a voter of
  // its own configuration: it stayed STANDBY. At start the stored one-node membership is now moved
  // to the new id (src/adapters/storage/adopt-standalone.ts) before identity.json records the name.
  it("keeps its data when it was standalone without a node name (the smallest configuration)", async () => {
    await runStandalone("n2", { unnamed: true });
    await assertKeptAsFirstMember("n2");
    const adoptions = cluster.node("n2").output.filter((line) => line.includes('"kind":"adopted"'));
    assert.equal(adoptions.length, 1, "the adoption is logged once");
    assert.match(adoptions[0] ?? "", /"fromId":"standalone","toId":"n2"/);
    // The member list drops the "standalone" row and the node announces itself under its name.
    await waitFor("n2 alone in the member list", 10_000, async () => {
      const members = (await clusterStatus("n2")).members.map((member) => member.raftId);
      return members.length === 1 && members[0] === "n2" ? true : null;
    });
  });

  it("takes a new member that replays the adopted log, and refuses to become unnamed again", async () => {
    cluster.start("n3", { joiner: true });
    await waitFor("n3 to serve HTTP", 15_000, async () => (await cluster.status("n3")) !== null);
    const target = `n2@127.0.0.1:${cluster.spec("n2").clusterPort}`;
    const joined = await cli(["join", target, "--endpoint", url("n3")]);
    assert.equal(joined.code, 0, joined.stderr);
    await waitFor("n3 to be a voter with the standalone data", 20_000, async () => {
      const status = await cluster.status("n3");
      if (status?.state !== "SECONDARY") return null;
      const kept = await cluster.get("n3", "kept-0", "local");
      return kept.status === 200 && (await kept.text()) === "value-0" ? true : null;
    });
    assert.deepEqual(
      (await clusterStatus("n3")).members.map((member) => member.raftId),
      ["n2", "n3"],
    );
    cluster.signal("n3", "SIGTERM");
    await cluster.node("n3").exited;
    cluster.signal("n2", "SIGTERM");
    await cluster.node("n2").exited;
    const unnamed = cluster.start("n2", { standalone: true, unnamed: true });
    assert.deepEqual(await unnamed.exited, { code: 1, signal: null });
    assert.match(unnamed.output.join("\n"), /belongs to node n2@127\.0\.0\.1 .*started without a name/);
  });
});
