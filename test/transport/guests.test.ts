/**
 * Guests (`admitGuests`): a node outside the peer set that proves the cookie is admitted, and
 * its messages arrive from `guest:<name@host>` (which no member id can be, so the runtime never
 * mistakes it for a member); without `admitGuests` it is refused; a wrong cookie is refused
 * either way; once the guest becomes a peer, its messages carry its member id.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { guestId } from "../../src/adapters/transport/tcp-transport.ts";
import { nodeName, WRONG_COOKIE, waitFor, withTcpCluster } from "./tcp-fixture.ts";

describe("guest admission", () => {
  it("admits a cookie-holding stranger as a guest, and as a member once it is a peer", async () => {
    await withTcpCluster(
      2,
      (index) => (index === 0 ? { admitGuests: true } : {}),
      async ({ nodes }) => {
        const [host, stranger] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
        host.transport.setPeers([host.address]); // the stranger is not a peer of the host
        stranger.transport.setPeers([host.address, stranger.address]);
        assert.equal(stranger.transport.send("n0", { type: "join-request" }), true);
        await waitFor(() => host.received.length === 1, "the guest's message");
        assert.deepEqual(host.received[0], { from: guestId(nodeName(1)), message: { type: "join-request" } });
        host.transport.setPeers([host.address, stranger.address]);
        await waitFor(
          () => stranger.transport.send("n0", { type: "again" }) && host.received.length >= 2,
          "the member's message",
          5000,
        );
        await waitFor(
          () => host.received.some((entry) => entry.from === "n1"),
          "a message attributed to n1",
          5000,
        );
      },
    );
  });

  it("refuses strangers without admitGuests, and a wrong cookie even with it", async () => {
    await withTcpCluster(
      3,
      (index) => (index === 0 ? { admitGuests: true } : index === 2 ? { cookie: WRONG_COOKIE } : {}),
      async ({ nodes }) => {
        const [host, stranger, impostor] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
        host.transport.setPeers([host.address]);
        impostor.transport.setPeers([host.address, impostor.address]);
        impostor.transport.send("n0", { type: "join-request" });
        await waitFor(
          () => impostor.events.some((event) => event.type === "auth-failed"),
          "the wrong cookie refused",
        );
        // n1 does not admit guests: the host (as a stranger to n1) cannot deliver to it.
        stranger.transport.setPeers([stranger.address]);
        host.transport.setPeers([host.address, stranger.address]);
        host.transport.send("n1", { type: "hello" });
        await waitFor(
          () => host.transport.stats().authFailures + stranger.transport.stats().authFailures > 0,
          "the stranger refused",
        );
        assert.equal(stranger.received.length, 0);
        assert.equal(host.received.length, 0);
      },
    );
  });
});
