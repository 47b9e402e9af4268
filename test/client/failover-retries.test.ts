/**
 * The client rides through an election: a cluster with no primary answers 503 CONCLAVE_NOT_PRIMARY
 * (`leader: null`, `outcome: "not-applied"`) until one is elected, and a write must still succeed
 * when that takes longer than one election round (a split vote). A fake server on loopback plays
 * the cluster, so the election's length is exact.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { ConclaveClient } from "../../src/client/index.ts";

/** A one-member "cluster" with no primary for `electionMs`, then a primary that takes puts. */
async function clusterElectingFor(electionMs: number) {
  const startedMs = performance.now();
  let puts = 0;
  let refused = 0;
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    request.on("end", () => {
      const elected = performance.now() - startedMs >= electionMs;
      response.setHeader("content-type", "application/json");
      if (request.url === "/v1/status") {
        response.end(JSON.stringify({ raftId: "n1", role: elected ? "leader" : "follower" }));
        return;
      }
      if (!elected) {
        refused++;
        response.statusCode = 503;
        response.end(
          JSON.stringify({
            code: "CONCLAVE_NOT_PRIMARY",
            error: "This node is not the primary: no primary is known right now; retry shortly.",
            leader: null,
            outcome: "not-applied",
          }),
        );
        return;
      }
      puts++;
      response.end(JSON.stringify({ revision: 7, term: 2 }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ puts, refused }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test("a write waits out an election of two rounds (1.3 s with no primary) and is applied once", async () => {
  const cluster = await clusterElectingFor(1300);
  try {
    const client = new ConclaveClient({ endpoints: [cluster.url], timeoutMs: 5000 });
    await client.kv.put("k", "v");
    const { puts, refused } = cluster.counts();
    assert.equal(puts, 1, "applied once, after the election");
    assert.ok(refused >= 2, `refused while there was no primary (${refused} times)`);
  } finally {
    await cluster.close();
  }
});
