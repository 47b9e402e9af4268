/** Runs the Transport compliance suite against every adapter. */
import { MemoryNetwork, MemoryTransport } from "../../src/adapters/transport/memory-transport.ts";
import type { PeerAddress } from "../../src/ports/transport.ts";
import { startTcpCluster } from "./tcp-fixture.ts";
import { type TransportHarness, transportComplianceSuite } from "./transport-compliance.ts";

transportComplianceSuite("TCP", async (count): Promise<TransportHarness> => {
  const cluster = await startTcpCluster(count);
  return {
    transports: cluster.nodes.map((node) => node.transport),
    peers: cluster.peers,
    stop: cluster.stop,
  };
});

transportComplianceSuite("memory", async (count): Promise<TransportHarness> => {
  const network = new MemoryNetwork();
  const peers: PeerAddress[] = Array.from({ length: count }, (_, i) => ({
    nodeId: `m${i}`,
    name: `m${i}@memory`,
    host: "memory",
    port: i + 1,
  }));
  const transports = peers.map((peer) => new MemoryTransport(network, { self: peer }));
  for (const transport of transports) {
    await transport.start();
    transport.setPeers(peers);
  }
  return { transports, peers, stop: async () => void (await Promise.all(transports.map((t) => t.stop()))) };
});
