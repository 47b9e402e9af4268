/**
 * Three real `conclave start` processes: a random SQL + KV workload through the HTTP API, then
 * every member's database is byte-identical (`GET /v1/debug/db-hash` at the same applied index),
 * also after the primary is killed and restarted mid-workload.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Prng } from "../../src/lib/prng.ts";
import { authorizedFetch } from "./api-token.ts";
import { ProcessCluster, waitFor } from "./node-processes.ts";

const names = ["n1", "n2", "n3"];

describe("replicated database on 3 processes", { timeout: 90_000 }, () => {
  let cluster: ProcessCluster;
  const url = (name: string): string => `http://127.0.0.1:${cluster.spec(name).httpPort}`;
  const execute = async (name: string, sql: string, params: unknown[] = []): Promise<number> =>
    (
      await authorizedFetch(`${url(name)}/v1/sql/execute`, {
        method: "POST",
        body: JSON.stringify({ statements: [{ sql, params }] }),
        signal: AbortSignal.timeout(5000),
      })
    ).status;

  before(async () => {
    cluster = await ProcessCluster.create(3);
    for (const name of names) cluster.start(name);
    await waitFor("a primary", 20_000, () => cluster.leader(names));
  });
  after(async () => cluster.killAll());

  async function workload(prng: Prng, operations: number, members = names): Promise<number> {
    let acknowledged = 0;
    for (let i = 0; i < operations; i++) {
      const leader = await waitFor("a primary", 10_000, () => cluster.leader(members));
      const id = prng.nextInt(50);
      const choice = prng.nextInt(4);
      let status: number;
      if (choice === 0)
        status = await execute(
          leader,
          "INSERT OR REPLACE INTO items (id, v, at) VALUES (?, random(), datetime('now'))",
          [id],
        );
      else if (choice === 1) status = await execute(leader, "UPDATE items SET v = v + 1 WHERE id < ?", [id]);
      else if (choice === 2) status = await execute(leader, "DELETE FROM items WHERE id = ?", [id]);
      else status = (await cluster.put(leader, `k${id}`, `v${i}`)).status;
      if (status === 200) acknowledged++;
    }
    return acknowledged;
  }

  async function hashes(): Promise<{ sha256: string; appliedIndex: number }[]> {
    return waitFor("every member at the same applied index", 15_000, async () => {
      const answers = await Promise.all(
        names.map(async (name) => {
          const response = await authorizedFetch(`${url(name)}/v1/debug/db-hash`, {
            signal: AbortSignal.timeout(5000),
          });
          return (await response.json()) as { sha256: string; appliedIndex: number };
        }),
      );
      return new Set(answers.map((answer) => answer.appliedIndex)).size === 1 ? answers : null;
    });
  }

  it("members hold byte-identical databases after a random workload and a primary restart", async () => {
    const leader = await waitFor("a primary", 10_000, () => cluster.leader(names));
    assert.equal(
      await execute(leader, "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER, at TEXT)"),
      200,
    );
    const prng = new Prng(20_250_501);
    const first = await workload(prng, 80);
    assert.ok(first >= 70, `most operations acknowledged (${first}/80)`);
    const before = await hashes();
    assert.equal(new Set(before.map((hash) => hash.sha256)).size, 1, JSON.stringify(before));

    const killed = await waitFor("a primary", 10_000, () => cluster.leader(names));
    cluster.signal(killed, "SIGKILL");
    await cluster.node(killed).exited;
    await workload(
      prng,
      30,
      names.filter((name) => name !== killed),
    );
    cluster.start(killed);
    await workload(prng, 20);
    const afterRestart = await hashes();
    assert.equal(new Set(afterRestart.map((hash) => hash.sha256)).size, 1, JSON.stringify(afterRestart));
    assert.ok((afterRestart[0]?.appliedIndex ?? 0) > (before[0]?.appliedIndex ?? 0));
    console.log(
      `# ${first}/80 + 50 operations; identical SHA-256 on 3 members at applied index ${afterRestart[0]?.appliedIndex}`,
    );
  });
});
