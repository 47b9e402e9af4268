/**
 * The API token: generated into an owner-only file at first start, required on every /v1 route
 * (401 naming where the token is; health routes stay open), one token per cluster (every member
 * ends up with the primary's token in its file and accepts it), sealed under the cookie.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateToken, sealToken, tokenSha256, unsealToken } from "../../src/cluster/api-token.ts";
import { waitFor } from "../e2e/node-processes.ts";
import { InProcessCluster } from "./node-fixture.ts";

describe("the API token", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  const tokenOf = (name: string) => readFileSync(join(cluster.root, name, "admin-token"), "utf8").trim();

  before(async () => {
    cluster = await InProcessCluster.start(3, {}, { sharedTokenFile: false });
  });
  after(async () => cluster.stop());

  it("is generated at first start into <data_dir>/admin-token, readable by the owner only", () => {
    for (const name of ["n1", "n2", "n3"]) {
      const mode = statSync(join(cluster.root, name, "admin-token")).mode & 0o777;
      assert.equal(mode, 0o600, `${name}'s token file mode`);
      assert.match(tokenOf(name), /^cnc_[A-Za-z0-9_-]{43}$/);
    }
  });

  it("is one token for the whole cluster: every member's file ends up holding the primary's", async () => {
    const leader = await cluster.leader();
    await waitFor("every token file to hold the cluster's token", 10_000, async () =>
      ["n1", "n2", "n3"].every((name) => tokenOf(name) === tokenOf(leader.name)),
    );
    const token = tokenOf("n1");
    for (const { url } of cluster.nodes) {
      const response = await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 200);
    }
  });

  it("is required on /v1 routes: a missing or wrong token is a 401 saying where the token is", async () => {
    const { url } = cluster.node("n2");
    const missing = await fetch(`${url}/v1/kv/a`);
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="conclave"');
    const missingBody = (await missing.json()) as { error: string; code: string };
    assert.equal(missingBody.code, "CONCLAVE_UNAUTHORIZED");
    assert.match(missingBody.error, /Authorization: Bearer <token>.*admin-token/);
    // A right token first, so that the wrong one (of the same length) meets the remembered one.
    const right = { authorization: `Bearer ${tokenOf("n2")}` };
    assert.equal((await fetch(`${url}/v1/status`, { headers: right })).status, 200);
    const wrong = await fetch(`${url}/v1/sql/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${generateToken()}`, "content-type": "application/json" },
      body: JSON.stringify({ statements: [{ sql: "CREATE TABLE x (a)" }] }),
    });
    assert.equal(wrong.status, 401);
    assert.match(((await wrong.json()) as { error: string }).error, /not this cluster's API token/);
    const notBearer = await fetch(`${url}/v1/status`, {
      headers: { authorization: `Basic ${tokenOf("n2")}` },
    });
    assert.equal(notBearer.status, 401);
    const almost = `${tokenOf("n2").slice(0, -1)}${tokenOf("n2").endsWith("A") ? "B" : "A"}`;
    assert.equal(
      (await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${almost}` } })).status,
      401,
    );
    assert.equal((await fetch(`${url}/v1/status`, { headers: right })).status, 200);
    assert.equal((await fetch(`${url}/health/live`)).status, 200, "health routes need no token");
  });

  it("is sealed under the cookie: another cookie cannot open it, a tampered copy does not open", () => {
    const token = generateToken();
    const sealed = sealToken(token, "cookie-one-with-enough-entropy-000000");
    assert.equal(unsealToken(sealed, "cookie-one-with-enough-entropy-000000"), token);
    assert.equal(unsealToken(sealed, "cookie-two-with-enough-entropy-000000"), null);
    const tampered = new Uint8Array(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    assert.equal(unsealToken(tampered, "cookie-one-with-enough-entropy-000000"), null);
    assert.equal(tokenSha256(token).length, 64);
  });
});
