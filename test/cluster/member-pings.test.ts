/**
 * Member pings (src/cluster/member-pings.ts): the clock offset comes from the wall clocks in a
 * ping and its pong; how long ago a member was heard from comes from the monotonic clock, so a
 * step of this node's wall clock neither makes every member look lost nor hides a lost one.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { ClusterMessage } from "../../src/cluster/cluster-channel.ts";
import { contactLostMs, MemberPings, problemCharsMax } from "../../src/cluster/member-pings.ts";

/** Two nodes whose pings are delivered by hand; each has a wall and a monotonic clock. */
function pair() {
  const clocks = { a: { wallMs: 1_000_000, monotonicMs: 0 }, b: { wallMs: 1_000_000, monotonicMs: 0 } };
  const problems: Record<"a" | "b", string | null> = { a: null, b: null };
  const inbox: { to: "a" | "b"; from: "a" | "b"; message: ClusterMessage }[] = [];
  const node = (self: "a" | "b", other: "a" | "b") =>
    new MemberPings({
      send: (to, message) => {
        inbox.push({ to: to as "a" | "b", from: self, message });
        return true;
      },
      wallClockMs: () => clocks[self].wallMs,
      monotonicMs: () => clocks[self].monotonicMs,
      self: () => ({ state: "SECONDARY", applied: 1, commit: 1, problem: problems[self] }),
      targets: () => [other],
    });
  const nodes = { a: node("a", "b"), b: node("b", "a") };
  const deliverAll = (): void => {
    while (inbox.length > 0) {
      const { to, from, message } = inbox.shift() as (typeof inbox)[number];
      nodes[to].receive(from, message);
    }
  };
  const pass = (ms: number): void => {
    for (const clock of Object.values(clocks)) {
      clock.wallMs += ms;
      clock.monotonicMs += ms;
    }
  };
  return { clocks, problems, inbox, nodes, deliverAll, pass };
}

it("measures the other member's clock offset from the wall clocks of a ping and its pong", () => {
  const { clocks, nodes, deliverAll } = pair();
  clocks.b.wallMs -= 60_000; // b runs a minute behind
  nodes.a.pingAll();
  deliverAll();
  assert.equal(nodes.a.contact("b")?.offsetMs, -60_000);
  assert.equal(nodes.a.reachable("b"), true);
});

it("a step of this node's wall clock changes neither whether a member is reachable nor how long ago it was heard", () => {
  const { clocks, nodes, deliverAll, pass } = pair();
  nodes.a.pingAll();
  deliverAll();
  const heardAt = nodes.a.contact("b")?.lastContactAtMs;
  clocks.a.wallMs += 3_600_000; // NTP steps a's clock an hour forward
  pass(500);
  assert.equal(nodes.a.reachable("b"), true, "heard from 500 ms ago, whatever the wall clock says");
  assert.equal(nodes.a.contact("b")?.lastContactAtMs, heardAt);
  pass(contactLostMs);
  assert.equal(nodes.a.reachable("b"), false, "silent for longer than contactLostMs: lost");
  nodes.a.pingAll();
  deliverAll();
  assert.equal(nodes.a.reachable("b"), true);
});

it("carries what a member says keeps it from working normally, cut to a bound; none from an earlier build", () => {
  const { problems, inbox, nodes, deliverAll } = pair();
  problems.b = `refuses writes: ${"x".repeat(1_000)}`;
  nodes.a.pingAll();
  deliverAll();
  const reported = nodes.a.contact("b")?.reported.problem;
  assert.ok(reported?.startsWith("refuses writes: "), String(reported));
  assert.equal(reported?.length, problemCharsMax);
  problems.b = null;
  nodes.a.pingAll();
  deliverAll();
  assert.equal(nodes.a.contact("b")?.reported.problem, null, "gone once the member says nothing");
  // A ping without the field, as a member of an earlier build sends it.
  nodes.b.pingAll();
  const sent = inbox.shift();
  assert.ok(sent);
  const { problem: _dropped, ...earlier } = sent.message as Record<string, unknown>;
  nodes.a.receive("b", earlier as ClusterMessage);
  assert.equal(nodes.a.contact("b")?.reported.problem, null);
});
