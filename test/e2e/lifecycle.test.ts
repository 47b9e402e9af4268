/**
 * Real node processes: a member with the wrong cookie is refused and both sides log it; SIGTERM
 * is a clean exit 0; a data directory refuses a start under another node name, in one plain line.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { authorizedFetch } from "./api-token.ts";
import { ProcessCluster, waitFor } from "./node-processes.ts";

describe("node process lifecycle and admission", { timeout: 60_000 }, () => {
  let cluster: ProcessCluster;

  before(async () => {
    cluster = await ProcessCluster.create(3);
  });
  after(async () => {
    await cluster.killAll();
  });

  /** Log entries of `name` that report a refused cluster connection with `peer`. */
  const authFailures = (name: string, peer: string): Record<string, unknown>[] =>
    cluster
      .node(name)
      .output.filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter(
        (entry) => entry.msg === "cluster connection refused: authentication failed" && entry.peer === peer,
      );

  it("refuses a member with the wrong cookie, and both sides log the refusal", async () => {
    cluster.start("n1");
    cluster.start("n2");
    cluster.start("n3", { cookie: randomBytes(32).toString("base64url") });
    // 20 s: the three processes start from the TypeScript sources while other test files run.
    const leader = await waitFor("a leader of n1 and n2", 20_000, () => cluster.leader(["n1", "n2"]));
    // The leader dials n3 to send heartbeats; n3 dials both to campaign. Each dialer checks the
    // acceptor's proof first, so each side logs the refusal of its own connection attempts.
    await waitFor(
      "the refusal in the leader's log",
      5_000,
      async () => authFailures(leader, "n3").length > 0,
    );
    await waitFor("the refusal in n3's log", 5_000, async () => authFailures("n3", leader).length > 0);
    assert.match(String(authFailures(leader, "n3")[0]?.reason), /does not hold our cookie/);
    const outsider = await cluster.status("n3");
    assert.notEqual(outsider?.role, "leader");
    assert.equal(outsider?.leader, null, "n3 never heard from the cluster's leader");
    assert.equal(outsider?.commit, 1, "n3 received nothing beyond its own bootstrap entry");
    // Repeated refusals are not logged at the rate of retries.
    assert.ok(authFailures(leader, "n3").length <= 3, "refusals are rate-limited in the log");
  });

  it("exits 0 on SIGTERM after a clean shutdown", async () => {
    cluster.signal("n1", "SIGTERM");
    const exit = await cluster.node("n1").exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(cluster.node("n1").output.some((line) => line.includes('"msg":"node stopped"')));
  });

  it("refuses to start on the same data directory under another node name, with the explanation", async () => {
    const imposter = cluster.start("n1", { nodeName: "x1" });
    const exit = await imposter.exited;
    assert.equal(exit.code, 1);
    const output = imposter.output.join("\n");
    assert.match(output, /^conclave: The data directory .* belongs to node n1@127\.0\.0\.1/);
    assert.equal(imposter.output.length, 1, `one plain line, no stack trace:\n${output}`);
  });

  it("refuses to start when its HTTP port is taken, in one plain line", async () => {
    const n2Http = cluster.spec("n2").httpPort;
    const spec = cluster.spec("n1");
    (spec as { httpPort: number }).httpPort = n2Http;
    const clash = cluster.start("n1");
    const exit = await clash.exited;
    assert.equal(exit.code, 1);
    const errors = clash.output.filter((line) => line.startsWith("conclave:"));
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? "", /Cannot listen for HTTP on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
  });

  it("answers bad HTTP input with a clear JSON error and keeps running", async () => {
    const base = `http://127.0.0.1:${cluster.spec("n2").httpPort}`;
    const tooLarge = await authorizedFetch(`${base}/v1/kv/big`, {
      method: "PUT",
      body: new Uint8Array(1024 * 1024 + 1),
    });
    assert.equal(tooLarge.status, 413);
    assert.match(((await tooLarge.json()) as { error: string }).error, /larger than 1048576 bytes/);
    const badKey = await authorizedFetch(`${base}/v1/kv/%ZZ`);
    assert.equal(badKey.status, 400);
    const unknown = await authorizedFetch(`${base}/v1/nothing`);
    assert.equal(unknown.status, 404);
    assert.ok(await cluster.status("n2"), "the node still answers");
  });

  it("refuses a weak cookie at start, without a stack trace", async () => {
    const weak = cluster.start("n3", { cookie: "secret" });
    const exit = await weak.exited;
    assert.equal(exit.code, 1);
    const output = weak.output.join("\n");
    assert.match(output, /^conclave: /);
    assert.match(output, /cookie/);
    assert.doesNotMatch(output, /^\s+at /m);
  });
});
