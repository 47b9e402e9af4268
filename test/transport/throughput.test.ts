/**
 * Throughput between two TCP transports on loopback (plain TCP, with the session MAC).
 * Figures are printed, not asserted: timing belongs to benchmarks. The test asserts only that
 * every message arrived, in order.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { startTcpCluster, waitFor } from "./tcp-fixture.ts";

async function measure(payloadBytes: number, count: number): Promise<void> {
  const cluster = await startTcpCluster(2);
  try {
    const [sender, receiver] = cluster.nodes;
    assert(sender && receiver);
    let received = 0;
    let outOfOrder = 0;
    receiver.transport.onMessage((_from, message) => {
      if ((message as { i: number }).i !== received) outOfOrder += 1;
      received += 1;
    });
    const data = new Uint8Array(payloadBytes).fill(7);
    const startedAt = performance.now();
    let sent = 0;
    // Send as fast as the bounded queue accepts; a refused send is retried on the next turn.
    while (sent < count) {
      while (sent < count && sender.transport.send("n1", { i: sent, data })) sent += 1;
      await nextTurn();
    }
    await waitFor(() => received === count, `${count} messages`, 60_000);
    const seconds = (performance.now() - startedAt) / 1000;
    assert.equal(outOfOrder, 0);
    const perSecond = count / seconds;
    const megabytesPerSecond = (count * payloadBytes) / seconds / 1e6;
    console.log(
      `throughput, ${payloadBytes}-byte payloads: ${Math.round(perSecond).toLocaleString("en")} messages/s, ` +
        `${megabytesPerSecond.toFixed(1)} MB/s of payload (${count} messages in ${seconds.toFixed(2)} s)`,
    );
  } finally {
    await cluster.stop();
  }
}

describe("TCP transport throughput on loopback", { timeout: 120_000 }, () => {
  it("100-byte messages", async () => {
    await measure(100, 100_000);
  });

  it("64 KiB messages", async () => {
    await measure(64 * 1024, 2_000);
  });
});
