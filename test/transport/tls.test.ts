/**
 * TLS and mutual TLS. Certificates are made with the `openssl` command line into a temp dir;
 * the node name (`n<i>@127.0.0.1`) is the certificate's CN.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TransportTlsOptions } from "../../src/adapters/transport/tls-identity.ts";
import { makeCa, makeLeaf, opensslAvailable } from "./certificates.ts";
import {
  assertHonestDelivery,
  nodeName,
  RawPeer,
  startTcpCluster,
  waitFor,
  withTcpCluster,
} from "./tcp-fixture.ts";
import { type TransportHarness, transportComplianceSuite } from "./transport-compliance.ts";

const opensslMissing = !opensslAvailable();
const skip = opensslMissing ? "the openssl command is not installed" : false;

const directory = opensslMissing ? "" : mkdtempSync(join(tmpdir(), "conclave-tls-"));

function tlsFor(file: string, requireClientCert: boolean, ca = "ca"): TransportTlsOptions {
  const read = (name: string) => readFileSync(join(directory, name), "utf8");
  return { cert: read(`${file}.crt`), key: read(`${file}.key`), ca: read(`${ca}.crt`), requireClientCert };
}

before(() => {
  if (opensslMissing) return;
  makeCa(directory, "ca");
  makeCa(directory, "rogue-ca");
  for (let i = 0; i < 3; i++) makeLeaf(directory, "ca", `n${i}`, nodeName(i));
  makeLeaf(directory, "ca", "impostor", "someone-else@127.0.0.1");
  makeLeaf(directory, "rogue-ca", "rogue-n0", nodeName(0));
});
after(() => {
  if (!opensslMissing) rmSync(directory, { recursive: true, force: true });
});

describe("TLS transport", { skip, timeout: 30_000 }, () => {
  it("delivers over TLS with server authentication only", async () => {
    await withTcpCluster(
      2,
      (i) => ({ tls: tlsFor(`n${i}`, false) }),
      async (cluster) => {
        await assertHonestDelivery(cluster, 0, 1);
        await assertHonestDelivery(cluster, 1, 0);
      },
    );
  });

  it("mutual TLS: a client certificate naming another node is refused, like a wrong cookie", async () => {
    await withTcpCluster(
      2,
      (i) => ({ tls: tlsFor(i === 0 ? "impostor" : `n${i}`, true) }),
      async ({ nodes: [n0, n1] }) => {
        assert(n0 && n1);
        n0.transport.send("n1", { from: "impostor" });
        await waitFor(() => n1.events.some((event) => event.type === "auth-failed"), "n1 to refuse n0");
        assert.match(
          n1.events.find((event) => event.type === "auth-failed")?.reason ?? "",
          /client certificate does not name "n0@127.0.0.1"/,
        );
        assert.equal(n1.received.length, 0);
      },
    );
  });

  it("the dialer refuses an acceptor whose certificate does not name the node it dials", async () => {
    await withTcpCluster(
      2,
      (i) => ({ tls: tlsFor(i === 1 ? "impostor" : `n${i}`, false) }),
      async ({ nodes: [n0] }) => {
        assert(n0);
        n0.transport.send("n1", { secret: true });
        await waitFor(() => n0.events.some((event) => event.type === "auth-failed"), "n0 to refuse n1");
        assert.match(
          n0.events.find((event) => event.type === "auth-failed")?.reason ?? "",
          /does not name "n1@/,
        );
      },
    );
  });

  it("mutual TLS: a certificate from another CA is refused during the TLS handshake", async () => {
    await withTcpCluster(
      2,
      (i) => ({ tls: i === 0 ? tlsFor("rogue-n0", true, "ca") : tlsFor(`n${i}`, true) }),
      async ({ nodes: [n0, n1] }) => {
        assert(n0 && n1);
        n0.transport.send("n1", { from: "rogue" });
        await waitFor(() => n1.transport.stats().authFailures >= 1, "n1 to refuse the rogue certificate");
        assert.equal(n1.received.length, 0);
      },
    );
  });

  it("a plain TCP client is closed by a TLS node", async () => {
    await withTcpCluster(
      2,
      (i) => ({ tls: tlsFor(`n${i}`, true) }),
      async (cluster) => {
        const target = cluster.nodes[1];
        assert(target);
        const plain = await RawPeer.connect(target.address.port);
        plain.writeMessage({ magic: "conclave" });
        await plain.expectClosed();
        assert.equal(target.received.length, 0);
        await assertHonestDelivery(cluster);
      },
    );
  });
});

if (!opensslMissing) {
  // The whole port contract holds over mutual TLS too.
  transportComplianceSuite("TCP + mutual TLS", async (count): Promise<TransportHarness> => {
    const cluster = await startTcpCluster(count, (i) => ({ tls: tlsFor(`n${i}`, true) }));
    return {
      transports: cluster.nodes.map((node) => node.transport),
      peers: cluster.peers,
      stop: cluster.stop,
    };
  });
}
