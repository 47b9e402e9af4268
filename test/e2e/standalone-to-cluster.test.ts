/**
 * The product promise "an existing standalone node keeps its data when it becomes the first
 * member": a real node runs with `cluster.mode = "standalone"`, writes KV and SQL data, stops
 * (SIGTERM), and is started again in cluster mode as the bootstrap member (`cluster.bootstrap =
 * true`, no member list). It must become primary of its one-node cluster, serve every value it
 * held (linearizable reads) and take new writes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { authorizedFetch } from "./api-token.ts";
import { type ConfigOverrides, ProcessCluster, waitFor } from "./node-processes.ts";

const keyCount = 5;

describe("a standalone node becomes the first member of a cluster", { timeout: 40_000 }, () => {
  let cluster: ProcessCluster;

  before(async () => {
    cluster = await ProcessCluster.create(2);
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
  });
});
