/**
 * `conclave sql` and `conclave kv` as a user runs them: the real binary against a real node
 * (in this process), table and JSON output, and one-line errors with a non-zero exit.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { InProcessCluster } from "../admin/node-fixture.ts";
import { testApiToken } from "../e2e/api-token.ts";
import { freePort } from "../e2e/node-processes.ts";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "conclave.js");

function conclave(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, CONCLAVE_TOKEN: testApiToken };
    execFile(process.execPath, [bin, ...args], { timeout: 20_000, env }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

describe("conclave sql / conclave kv", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  let endpoint: string[];

  before(async () => {
    cluster = await InProcessCluster.start(1);
    endpoint = ["--endpoint", cluster.node("n1").url];
  });
  after(async () => cluster.stop());

  it("creates, inserts (rows changed) and selects (a table, or JSON)", async () => {
    assert.equal(
      (await conclave(["sql", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", ...endpoint])).code,
      0,
    );
    const insert = await conclave(["sql", "INSERT INTO t (name) VALUES ('ada'), ('bob')", ...endpoint]);
    assert.equal(insert.stdout, "2 rows changed\n");
    const select = await conclave(["sql", "SELECT id, name FROM t ORDER BY id", ...endpoint]);
    assert.equal(select.code, 0, select.stderr);
    assert.equal(select.stdout, "id  name\n1   ada\n2   bob\n");
    const json = await conclave([
      "sql",
      "SELECT name FROM t WHERE id = 2",
      "--json",
      "--consistency",
      "strong",
      ...endpoint,
    ]);
    assert.deepEqual(JSON.parse(json.stdout), { rows: [{ name: "bob" }], truncated: false });
  });

  it("prints one plain line and exits 1 for SQL errors, refusals and a bad level", async () => {
    for (const args of [
      ["sql", "INSERT INTO nowhere VALUES (1)"],
      ["sql", "ATTACH 'x' AS y"],
      ["sql", "SELECT 1", "--consistency", "eventual"],
    ]) {
      const run = await conclave([...args, ...endpoint]);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, /^conclave: .+\n$/, run.stderr);
      assert.doesNotMatch(run.stderr, /^\s+at /m);
    }
  });

  it("puts, gets and deletes keys; a missing key and a dead endpoint are one-line errors", async () => {
    const put = await conclave(["kv", "put", "greeting", "hello", ...endpoint]);
    assert.match(put.stdout, /^revision \d+\n$/);
    assert.equal((await conclave(["kv", "get", "greeting", ...endpoint])).stdout, "hello\n");
    assert.equal((await conclave(["kv", "del", "greeting", ...endpoint])).stdout, "1 deleted\n");
    const missing = await conclave(["kv", "get", "greeting", ...endpoint]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "conclave: no key greeting\n");
    const dead = await conclave(["kv", "get", "x", "--endpoint", `http://127.0.0.1:${await freePort()}`]);
    assert.equal(dead.code, 1);
    assert.match(dead.stderr, /^conclave: no endpoint answered/);
  });
});
