/**
 * Mutual TLS between real node processes, set up only by configuration ([tls] with certificates
 * whose CN is the node name): members with certificates from the cluster's CA form a cluster;
 * a member whose certificate comes from another CA is kept out, and the refusal is logged.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeCa, makeLeaf, opensslAvailable } from "../transport/certificates.ts";
import { ProcessCluster, waitFor } from "./node-processes.ts";

const skip = opensslAvailable() ? false : "the openssl command is not installed";

describe("mutual TLS between node processes", { timeout: 30_000, skip }, () => {
  let cluster: ProcessCluster;
  const files = (name: string) => ({
    cert: join(cluster.root, `${name}.crt`),
    key: join(cluster.root, `${name}.key`),
    ca: join(cluster.root, "ca.crt"),
  });

  before(async () => {
    cluster = await ProcessCluster.create(3);
    makeCa(cluster.root, "ca");
    makeCa(cluster.root, "rogue-ca");
    for (const name of ["n1", "n2"]) makeLeaf(cluster.root, "ca", name, `${name}@127.0.0.1`);
    makeLeaf(cluster.root, "rogue-ca", "n3", "n3@127.0.0.1"); // right name, wrong CA
  });
  after(async () => {
    await cluster.killAll();
  });

  it("members with the cluster CA's certificates form a cluster and replicate writes", async () => {
    for (const name of ["n1", "n2", "n3"]) cluster.start(name, { tls: files(name) });
    const leader = await waitFor("a leader among n1 and n2", 15_000, () => cluster.leader(["n1", "n2"]));
    assert.equal((await cluster.put(leader, "secret", "kept")).status, 200);
    const other = leader === "n1" ? "n2" : "n1";
    await waitFor("the write on the other member", 5000, async () => {
      const response = await cluster.get(other, "secret", "local");
      return response.status === 200 && (await response.text()) === "kept";
    });
  });

  it("a member with a certificate from another CA never joins, and the refusal is logged", async () => {
    const status = await cluster.status("n3");
    assert.notEqual(status?.role, "leader");
    assert.equal(status?.leader ?? null, null, "n3 never heard from a leader");
    const refusals = () =>
      ["n1", "n2"].flatMap((name) =>
        cluster
          .node(name)
          .output.filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as { msg?: string; reason?: string })
          .filter((entry) => entry.msg === "cluster connection refused: authentication failed"),
      );
    // n3 keeps dialling; its first attempts may still be on their way when the previous test ends.
    const refused = await waitFor("n1 or n2 to log a TLS refusal of n3", 10_000, async () =>
      refusals().some((entry) => /TLS/.test(entry.reason ?? "")) ? true : null,
    ).catch(() => false);
    assert.ok(refused, `n1 or n2 logged a TLS refusal: ${JSON.stringify(refusals())}`);
  });
});
