/**
 * `GET /v1/metrics` on a real 3-node cluster in one process, and the exposition format itself:
 * every line is valid Prometheus text, the token is required, the primary says it leads, and the
 * storage counters move with the writes a client makes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DurableWrites, durableWriteBucketsSeconds } from "../../src/adapters/storage/durable-writes.ts";
import { HttpMetrics } from "../../src/admin/http-metrics.ts";
import { type MetricFamily, renderFamilies } from "../../src/admin/metrics.ts";
import { authorizedFetch } from "../e2e/api-token.ts";
import { InProcessCluster, type TestNode } from "./node-fixture.ts";

/**
 * One sample line: name, optional {labels}, value (the format's grammar, without timestamps).
 * NaN and Inf in any case, as Prometheus reads them (Go's ParseFloat); prom-client writes "Nan".
 */
const sampleLine =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (-?[0-9.eE+-]+|[Nn][Aa][Nn]|[+-]?[Ii][Nn][Ff])$/;

/** Parses exposition text strictly; throws naming the first bad line. Returns name{labels} → value. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === "TYPE") {
        assert.match(meta[3] ?? "", /^(counter|gauge|histogram|summary|untyped)$/, line);
        typed.add(meta[2] ?? "");
      }
      continue;
    }
    const sample = sampleLine.exec(line);
    assert.ok(sample !== null, `not a valid sample line: ${JSON.stringify(line)}`);
    const name = sample[1] ?? "";
    const family = name.replace(/_(bucket|sum|count|total|created)$/, "");
    assert.ok(typed.has(name) || typed.has(family), `no # TYPE before ${name}`);
    samples.set(`${name}${sample[2] ?? ""}`, Number(sample[3]));
  }
  return samples;
}

async function scrape(node: TestNode): Promise<Map<string, number>> {
  const response = await authorizedFetch(`${node.url}/v1/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

describe("metrics exposition format", () => {
  it("renders gauges, counters and cumulative histograms with HELP and TYPE", () => {
    const families: MetricFamily[] = [
      { name: "a_gauge", help: "line one\nback\\slash", type: "gauge", value: 1.5 },
      { name: "b_total", help: "count", type: "counter", value: 7 },
      {
        name: "c_seconds",
        help: "time",
        type: "histogram",
        bucketsSeconds: [0.001, 0.01],
        series: [{ labels: {}, buckets: [2, 1, 4], sum: 0.25, count: 7 }],
      },
    ];
    assert.equal(
      renderFamilies(families),
      [
        "# HELP a_gauge line one\\nback\\\\slash",
        "# TYPE a_gauge gauge",
        "a_gauge 1.5",
        "# HELP b_total count",
        "# TYPE b_total counter",
        "b_total 7",
        "# HELP c_seconds time",
        "# TYPE c_seconds histogram",
        'c_seconds_bucket{le="0.001"} 2',
        'c_seconds_bucket{le="0.01"} 3',
        'c_seconds_bucket{le="+Inf"} 7',
        "c_seconds_sum 0.25",
        "c_seconds_count 7",
        "",
      ].join("\n"),
    );
  });

  it("escapes label values and puts le after a series' own labels", () => {
    const text = renderFamilies([
      {
        name: "x_total",
        help: "h",
        type: "counter",
        samples: [{ labels: { route: 'a"b\\c\nd', code: "200" }, value: 2 }],
      },
      {
        name: "y_seconds",
        help: "h",
        type: "histogram",
        bucketsSeconds: [1],
        series: [{ labels: { route: "/r" }, buckets: [1, 1], sum: 3, count: 2 }],
      },
    ]);
    assert.match(text, /^x_total\{route="a\\"b\\\\c\\nd",code="200"\} 2$/m);
    assert.match(text, /^y_seconds_bucket\{route="\/r",le="1"\} 1$/m);
    assert.match(text, /^y_seconds_bucket\{route="\/r",le="\+Inf"\} 2$/m);
    assert.match(text, /^y_seconds_count\{route="\/r"\} 2$/m);
    parseExposition(text);
  });

  it("counts HTTP requests by method, route pattern and status, bounded", () => {
    const metrics = new HttpMetrics();
    metrics.record("PUT", "/v1/kv/*", 200, 0.002);
    metrics.record("PUT", "/v1/kv/*", 200, 0.004);
    metrics.record("BREW", "/v1/kv/*", 404, 0.0001);
    const samples = parseExposition(renderFamilies(metrics.families()));
    assert.equal(samples.get('conclave_http_requests_total{method="PUT",route="/v1/kv/*",code="200"}'), 2);
    assert.equal(samples.get('conclave_http_requests_total{method="other",route="/v1/kv/*",code="404"}'), 1);
    assert.equal(
      samples.get('conclave_http_request_duration_seconds_bucket{route="/v1/kv/*",le="0.0025"}'),
      2,
    );
    assert.equal(samples.get('conclave_http_request_duration_seconds_count{route="/v1/kv/*"}'), 3);
    // A bug labelling by something unbounded cannot grow the series without end.
    for (let i = 0; i < 2000; i++) metrics.record("GET", `/bug/${i}`, 200, 0.001);
    const families = metrics.families();
    const requests = families[0];
    assert.ok(requests !== undefined && "samples" in requests && requests.samples.length <= 501);
    const durations = families[1];
    assert.ok(durations !== undefined && "series" in durations && durations.series.length <= 501);
  });

  it("puts each durable write in the first bucket whose bound it does not exceed", () => {
    const writes = new DurableWrites();
    writes.record(100, 0.0002); // ≤ 0.25 ms
    writes.record(200, 0.0009); // ≤ 1 ms (third bound)
    writes.record(0, 60); // above every bound
    const { bytes, seconds } = writes.snapshot();
    assert.equal(seconds.count, 3);
    assert.equal(bytes, 300);
    assert.equal(seconds.buckets.length, durableWriteBucketsSeconds.length + 1);
    assert.equal(seconds.buckets[0], 1);
    assert.equal(seconds.buckets[2], 1);
    assert.equal(seconds.buckets.at(-1), 1);
  });
});

describe("GET /v1/metrics", { timeout: 60_000 }, () => {
  let cluster: InProcessCluster;
  let leader: TestNode;

  before(async () => {
    cluster = await InProcessCluster.start(3);
    leader = await cluster.leader();
  });
  after(async () => {
    await cluster?.stop();
  });

  it("answers several first scrapes at once (the process collectors are registered once)", async () => {
    const follower = cluster.followers(leader)[0] as TestNode;
    const cpuSeconds = (): number => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    };
    const usedBefore = cpuSeconds();
    const scrapes = await Promise.all([scrape(follower), scrape(follower), scrape(follower)]);
    const usedAfter = cpuSeconds();
    for (const samples of scrapes) {
      assert.ok(samples.has("process_resident_memory_bytes"));
      // The nodes run in this process: its CPU since start, not since the first scrape.
      const reported = samples.get("process_cpu_seconds_total") ?? 0;
      assert.ok(reported >= usedBefore - 0.001 && reported <= usedAfter + 0.001, `${reported} s`);
      const user = samples.get("process_cpu_user_seconds_total") ?? 0;
      const system = samples.get("process_cpu_system_seconds_total") ?? 0;
      assert.ok(Math.abs(user + system - reported) < 0.001);
    }
  });

  it("needs the API token", async () => {
    const response = await fetch(`${leader.url}/v1/metrics`, { signal: AbortSignal.timeout(5000) });
    assert.equal(response.status, 401);
  });

  it("counts the Hono routes by their pattern, refusals and paths no route matches", async () => {
    await fetch(`${leader.url}/v1/status`, { signal: AbortSignal.timeout(5000) }); // no token: 401
    await authorizedFetch(`${leader.url}/v1/status`, { signal: AbortSignal.timeout(5000) });
    await authorizedFetch(`${leader.url}/v1/no-such-route/42`, { signal: AbortSignal.timeout(5000) });
    const samples = await scrape(leader);
    assert.ok(
      (samples.get('conclave_http_requests_total{method="GET",route="/v1/status",code="401"}') ?? 0) >= 1,
    );
    assert.ok(
      (samples.get('conclave_http_requests_total{method="GET",route="/v1/status",code="200"}') ?? 0) >= 1,
    );
    assert.ok(
      (samples.get('conclave_http_requests_total{method="GET",route="unmatched",code="404"}') ?? 0) >= 1,
    );
    // The path a client sent never becomes a label.
    assert.ok(![...samples.keys()].some((key) => key.includes("no-such-route")));
  });

  it("says who leads, and counts the durable writes a client's puts cause on every member", async () => {
    // The deltas below are exact only if one primary served every put: on a busy machine the
    // in-process cluster (10 ms ticks) may elect meanwhile (a put is then refused 503), so the
    // measurement is taken again, three times at most, until a term passes without a change.
    let before: Map<string, number>[] = [];
    let afterPuts: Map<string, number>[] = [];
    for (let attempt = 1; ; attempt++) {
      leader = await cluster.leader();
      const term = leader.node.runtime.status().term;
      before = await Promise.all(cluster.nodes.map(scrape));
      let refused = 0;
      for (let i = 0; i < 20; i++) {
        const follower = cluster.followers(leader)[i % 2] as TestNode;
        const response = await authorizedFetch(`${follower.url}/v1/kv/metrics-${attempt}-${i}`, {
          method: "PUT",
          body: "v".repeat(100),
          signal: AbortSignal.timeout(5000),
        });
        if (response.status !== 200) refused++;
      }
      await cluster.converged();
      afterPuts = await Promise.all(cluster.nodes.map(scrape));
      const stable =
        refused === 0 && (await cluster.leader()) === leader && leader.node.runtime.status().term === term;
      if (stable) break;
      assert.ok(
        attempt < 3,
        `an election during each of ${attempt} attempts (${refused} puts refused in the last)`,
      );
    }
    cluster.nodes.forEach((node, at) => {
      const was = before[at] as Map<string, number>;
      const now = afterPuts[at] as Map<string, number>;
      const isLeader = node === leader;
      assert.equal(now.get("conclave_raft_is_leader"), isLeader ? 1 : 0, node.name);
      assert.equal(now.get("conclave_raft_has_leader"), 1);
      assert.ok((now.get("conclave_raft_leader_changes_total") ?? 0) >= 1);
      assert.equal(now.get("conclave_raft_term"), leader.node.runtime.status().term);
      // Exposed on every member; only the primary ever waits for its followers' answers.
      const commitWaits = now.get("conclave_raft_commit_waits_total");
      assert.ok(commitWaits !== undefined, `${node.name}: conclave_raft_commit_waits_total is exposed`);
      if (!isLeader) assert.equal(commitWaits, was.get("conclave_raft_commit_waits_total") ?? 0);
      assert.ok(
        (now.get("conclave_raft_applied_index") ?? 0) >= (was.get("conclave_raft_applied_index") ?? 0) + 20,
      );
      // Each put is in the log of every member, written durably: at least its 100 bytes each.
      const writes =
        (now.get("conclave_storage_durable_writes_total") ?? 0) -
        (was.get("conclave_storage_durable_writes_total") ?? 0);
      const bytes =
        (now.get("conclave_storage_durable_write_bytes_total") ?? 0) -
        (was.get("conclave_storage_durable_write_bytes_total") ?? 0);
      assert.ok(writes >= 1, `${node.name}: ${writes} durable writes`);
      assert.ok(bytes >= 20 * 100, `${node.name}: ${bytes} bytes written durably`);
      assert.equal(
        now.get('conclave_storage_durable_write_duration_seconds_bucket{le="+Inf"}'),
        now.get("conclave_storage_durable_writes_total"),
      );
      assert.equal(now.get("conclave_peers"), 2);
      // The secondaries forwarded the puts, the primary served them.
      const forwardName = isLeader
        ? "conclave_forwarding_served_total"
        : "conclave_forwarding_forwarded_total";
      assert.ok(
        (now.get(forwardName) ?? 0) - (was.get(forwardName) ?? 0) >= 10,
        `${node.name} ${forwardName}`,
      );
      assert.ok((now.get("conclave_transport_messages_sent_total") ?? 0) > 0);
      // Each follower answered its 10 puts on the plain router's pattern, timed.
      if (!isLeader) {
        const key = 'conclave_http_requests_total{method="PUT",route="/v1/kv/*",code="200"}';
        assert.equal((now.get(key) ?? 0) - (was.get(key) ?? 0), 10, `${node.name} ${key}`);
        assert.ok((now.get('conclave_http_request_duration_seconds_count{route="/v1/kv/*"}') ?? 0) >= 10);
      }
      // prom-client's process collectors are there too.
      assert.ok((now.get("process_cpu_seconds_total") ?? 0) > 0);
      assert.ok(now.has("nodejs_eventloop_lag_seconds"));
    });
  });
});
