import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  formatMemberAddress,
  formatNodeName,
  type MemberAddress,
  type NodeName,
  parseHost,
  parseMemberAddress,
  parseNodeName,
} from "../../src/config/node-name.ts";

function refusal(result: { ok: boolean; message?: string }): string {
  assert.equal(result.ok, false, "expected a refusal");
  return (result as { message: string }).message;
}

describe("node names", () => {
  it("parses IPv4, host name and IPv6 hosts", () => {
    assert.deepEqual(parseNodeName("n1@10.0.0.5"), {
      ok: true,
      value: { name: "n1", host: "10.0.0.5", hostKind: "ipv4" },
    });
    assert.deepEqual(parseNodeName("db_1-a@db1.example.com"), {
      ok: true,
      value: { name: "db_1-a", host: "db1.example.com", hostKind: "hostname" },
    });
    assert.deepEqual(parseNodeName("n1@[fd00::5]"), {
      ok: true,
      value: { name: "n1", host: "fd00::5", hostKind: "ipv6" },
    });
    assert.deepEqual(parseNodeName("n1@::1"), {
      ok: true,
      value: { name: "n1", host: "::1", hostKind: "ipv6" },
    });
    assert.deepEqual(parseNodeName("n1@localhost"), {
      ok: true,
      value: { name: "n1", host: "localhost", hostKind: "hostname" },
    });
  });

  it("formats IPv6 hosts in brackets", () => {
    const parsed = parseNodeName("n1@::1");
    assert.ok(parsed.ok);
    assert.equal(formatNodeName(parsed.value), "n1@[::1]");
  });

  const bad: Array<[string, RegExp]> = [
    ["n1", /no "@"/],
    ["n1@a@b", /more than one "@"/],
    ["@host", /nothing before the "@"/],
    ["n 1@host", /only letters, digits, "_" and "-"/],
    [`${"a".repeat(65)}@host`, /at most 64/],
    ["n1@", /host is empty/],
    ["n1@-bad.example.com", /may not start or end with a hyphen/],
    ["n1@bad_host.example.com", /only letters, digits and hyphens/],
    [`n1@${"a".repeat(64)}.com`, /longer than 63/],
    [`n1@${Array.from({ length: 64 }, () => "abc").join(".")}`, /at most 253/],
    ["n1@a..b", /empty label/],
    ["n1@999.1.1.1", /not a valid IPv4/],
    ["n1@[10.0.0.1]", /not an IPv6 address/],
    ["n1@10.0.0.5:4370", /has no port/],
  ];
  for (const [text, reason] of bad) {
    it(`refuses ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)} and shows a valid example`, () => {
      const message = refusal(parseNodeName(text));
      assert.match(message, reason);
      assert.match(message, /n1@10\.0\.0\.5/, "the message shows an example of a valid name");
    });
  }
});

describe("member entries", () => {
  it("parses an optional port", () => {
    assert.deepEqual(parseMemberAddress("n2@10.0.0.6:4371"), {
      ok: true,
      value: { name: "n2", host: "10.0.0.6", hostKind: "ipv4", port: 4371 },
    });
    assert.deepEqual(parseMemberAddress("n2@db2.example.com"), {
      ok: true,
      value: { name: "n2", host: "db2.example.com", hostKind: "hostname", port: undefined },
    });
    assert.deepEqual(parseMemberAddress("n3@[fd00::7]:4370"), {
      ok: true,
      value: { name: "n3", host: "fd00::7", hostKind: "ipv6", port: 4370 },
    });
  });

  for (const [text, reason] of [
    ["n2@host:0", /not a whole number from 1 to 65535/],
    ["n2@host:65536", /not a whole number from 1 to 65535/],
    ["n2@host:http", /not a whole number/],
    ["n2@fd00::7", /in brackets, e.g. n1@\[fd00::7\]:4370/],
    ["n2@[fd00::7", /never closed/],
    ["n2@[fd00::7]4370", /after the "\]"/],
  ] as const) {
    it(`refuses ${text}`, () => {
      const message = refusal(parseMemberAddress(text));
      assert.match(message, reason);
      assert.match(message, /bad member entry/);
    });
  }

  it("host check accepts IPs and RFC 1123 names only", () => {
    assert.equal(parseHost("0.0.0.0").ok, true);
    assert.equal(parseHost("::").ok, true);
    assert.equal(parseHost("my-host").ok, true);
    assert.equal(parseHost("my host").ok, false);
  });
});

describe("property: any valid name@host round-trips", () => {
  const shortName = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
  const label = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/);
  const hostname = fc
    .array(label, { minLength: 1, maxLength: 5 })
    .map((labels) => labels.join("."))
    // All-digit dotted names are read as (bad) IPv4 addresses, by design.
    .filter((host) => host.length <= 253 && !/^[0-9.]+$/.test(host));
  const host = fc.oneof(
    fc.ipV4().map((address) => ({ host: address, hostKind: "ipv4" as const })),
    fc.ipV6().map((address) => ({ host: address, hostKind: "ipv6" as const })),
    hostname.map((name) => ({ host: name, hostKind: "hostname" as const })),
  );
  const nodeName = fc
    .record({ name: shortName, address: host })
    .map(({ name, address }): NodeName => ({ name, ...address }));

  it("parseNodeName(formatNodeName(x)) equals x", () => {
    fc.assert(
      fc.property(nodeName, (value) => {
        const parsed = parseNodeName(formatNodeName(value));
        assert.deepEqual(parsed, { ok: true, value });
        assert.ok(parsed.ok);
        assert.equal(formatNodeName(parsed.value), formatNodeName(value));
      }),
      { numRuns: 500 },
    );
  });

  it("parseMemberAddress(formatMemberAddress(x)) equals x, with and without a port", () => {
    const member = fc
      .record({ base: nodeName, port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }) })
      .map(({ base, port }): MemberAddress => ({ ...base, port }));
    fc.assert(
      fc.property(member, (value) => {
        assert.deepEqual(parseMemberAddress(formatMemberAddress(value)), { ok: true, value });
      }),
      { numRuns: 500 },
    );
  });
});
