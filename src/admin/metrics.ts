/**
 * The node's metrics in the Prometheus text exposition format (version 0.0.4), for
 * `GET /v1/metrics`. Conclave's own figures are read from the node at each scrape (nothing is
 * kept for them between scrapes) and rendered here; the Node.js process figures (CPU, memory,
 * event-loop delay, GC) come from prom-client's default collectors, appended by the route.
 *
 * @example
 * ```ts
 * renderFamilies([{ name: "conclave_raft_term", help: "Current term.", type: "gauge", value: 3 }]);
 * // "# HELP conclave_raft_term Current term.\n# TYPE conclave_raft_term gauge\nconclave_raft_term 3\n"
 * ```
 */

import type { HistogramSnapshot } from "../lib/histogram.ts";

/** What the node reports for one scrape (the composition root fills it in). */
export interface NodeMetrics {
  readonly raft: {
    readonly term: number;
    readonly isLeader: boolean;
    readonly hasLeader: boolean;
    /** Times this node saw the cluster's leader change (a new leader, or none) since it started. */
    readonly leaderChanges: number;
    readonly commit: number;
    readonly applied: number;
    readonly firstIndex: number;
    readonly lastIndex: number;
    readonly logBytes: number;
  };
  /** The log's and hard state's O_DSYNC writes and fsyncs (src/adapters/storage/durable-writes.ts). */
  readonly storage: {
    readonly bytes: number;
    /** Seconds per durable write. */
    readonly seconds: HistogramSnapshot;
  };
  /** Counters of the cluster transport (TransportStats) and the runtime, by their field names. */
  readonly transport: Readonly<Record<string, number>>;
  readonly forwarding: {
    readonly forwarded: number;
    readonly served: number;
    readonly outstanding: number;
    readonly serving: number;
    readonly malformedDropped: number;
  };
  readonly peers: { readonly known: number; readonly reachable: number };
}

/** Label names and values of one series (values are escaped when rendered). */
export type Labels = Readonly<Record<string, string>>;

export type MetricFamily =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: "gauge" | "counter";
      readonly value: number;
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: "gauge" | "counter";
      readonly samples: readonly { readonly labels: Labels; readonly value: number }[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: "histogram";
      readonly bucketsSeconds: readonly number[];
      readonly series: readonly HistogramSeries[];
    };

/** One histogram series: its labels and its counts (src/lib/histogram.ts); the family holds the bounds. */
export interface HistogramSeries extends Omit<HistogramSnapshot, "bounds"> {
  readonly labels: Labels;
}

/** A sample value as Prometheus reads it. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

/** HELP text escaping of the format: backslash and newline. */
function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** `{a="x",b="y"}` with the format's escaping of label values, or "" without labels. */
function renderLabels(labels: Labels, extra: string | null = null): string {
  const parts = Object.entries(labels).map(
    ([name, value]) =>
      `${name}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`,
  );
  if (extra !== null) parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** The families as exposition text (each with HELP and TYPE; histogram buckets cumulative). */
export function renderFamilies(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    if ("value" in family) {
      lines.push(`${family.name} ${formatValue(family.value)}`);
    } else if ("samples" in family) {
      for (const sample of family.samples)
        lines.push(`${family.name}${renderLabels(sample.labels)} ${formatValue(sample.value)}`);
    } else {
      for (const series of family.series) {
        let cumulative = 0;
        family.bucketsSeconds.forEach((bound, at) => {
          cumulative += series.buckets[at] ?? 0;
          lines.push(
            `${family.name}_bucket${renderLabels(series.labels, `le="${formatValue(bound)}"`)} ${cumulative}`,
          );
        });
        lines.push(
          `${family.name}_bucket${renderLabels(series.labels, 'le="+Inf"')} ${series.count}`,
          `${family.name}_sum${renderLabels(series.labels)} ${formatValue(series.sum)}`,
          `${family.name}_count${renderLabels(series.labels)} ${series.count}`,
        );
      }
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/** The transport's counters: field of TransportStats / RuntimeStats → metric name and help. */
const transportCounters: readonly (readonly [string, string, string])[] = [
  ["messagesOut", "conclave_transport_messages_sent_total", "Cluster messages sent to other members."],
  ["framesOut", "conclave_transport_frames_sent_total", "Frames written; messages sent together share one."],
  [
    "messagesIn",
    "conclave_transport_messages_received_total",
    "Cluster messages received from other members.",
  ],
  ["bytesOut", "conclave_transport_sent_bytes_total", "Bytes written to other members."],
  ["bytesIn", "conclave_transport_received_bytes_total", "Bytes read from other members."],
  [
    "messagesDropped",
    "conclave_transport_messages_dropped_total",
    "Messages refused or discarded before being written (queue full, stop, removal).",
  ],
  [
    "authFailures",
    "conclave_transport_auth_failures_total",
    "Handshakes that failed authentication (wrong cookie, unknown node, wrong cluster).",
  ],
  [
    "protocolErrors",
    "conclave_transport_protocol_errors_total",
    "Connections closed for a protocol violation (garbage, oversized or malformed frames, bad MACs).",
  ],
  [
    "connectionsRejected",
    "conclave_transport_connections_rejected_total",
    "Connections closed at once by admission control.",
  ],
  [
    "handshakeTimeouts",
    "conclave_transport_handshake_timeouts_total",
    "Handshakes that did not finish in time.",
  ],
  [
    "stalledLinksReset",
    "conclave_transport_stalled_links_reset_total",
    "Connections redialed because the peer answered nothing for a while.",
  ],
  [
    "malformedMessagesDropped",
    "conclave_raft_malformed_messages_dropped_total",
    "Raft messages dropped as malformed.",
  ],
  [
    "appendsDroppedWhileLogFull",
    "conclave_raft_appends_dropped_log_full_total",
    "Appends dropped while this member's log was full.",
  ],
  [
    "commitWaits",
    "conclave_raft_commit_waits_total",
    "Times this member, as the primary, waited for its followers' answers before its next log write (cluster.commit_wait_ms).",
  ],
];

/** Conclave's own families for one scrape. */
export function nodeFamilies(metrics: NodeMetrics): MetricFamily[] {
  const { raft, storage, forwarding } = metrics;
  const gauge = (name: string, help: string, value: number): MetricFamily => ({
    name,
    help,
    type: "gauge",
    value,
  });
  const counter = (name: string, help: string, value: number): MetricFamily => ({
    name,
    help,
    type: "counter",
    value,
  });
  const families: MetricFamily[] = [
    gauge("conclave_raft_term", "Current Raft term of this member.", raft.term),
    gauge(
      "conclave_raft_is_leader",
      "1 when this member is the primary (Raft leader), else 0.",
      raft.isLeader ? 1 : 0,
    ),
    gauge("conclave_raft_has_leader", "1 when this member knows a primary, else 0.", raft.hasLeader ? 1 : 0),
    counter(
      "conclave_raft_leader_changes_total",
      "Times this member saw the primary change (a new one, or none) since it started.",
      raft.leaderChanges,
    ),
    gauge("conclave_raft_commit_index", "Highest log index known committed.", raft.commit),
    gauge("conclave_raft_applied_index", "Highest log index applied to the database.", raft.applied),
    gauge(
      "conclave_raft_first_index",
      "First index of this member's log (entries before it are compacted).",
      raft.firstIndex,
    ),
    gauge("conclave_raft_last_index", "Last index of this member's log.", raft.lastIndex),
    gauge(
      "conclave_raft_log_bytes",
      "Bytes of command data held in this member's log (what compaction frees).",
      raft.logBytes,
    ),
    counter(
      "conclave_storage_durable_writes_total",
      "Durable writes of the log and hard state (O_DSYNC writes and fsyncs).",
      storage.seconds.count,
    ),
    counter(
      "conclave_storage_durable_write_bytes_total",
      "Bytes written durably (O_DSYNC) to the log and hard state.",
      storage.bytes,
    ),
    {
      name: "conclave_storage_durable_write_duration_seconds",
      help: "Time of each durable write or fsync; a write request waits for the log's.",
      type: "histogram",
      bucketsSeconds: storage.seconds.bounds,
      series: [{ labels: {}, ...storage.seconds }],
    },
  ];
  for (const [field, name, help] of transportCounters) {
    const value = metrics.transport[field];
    if (value !== undefined) families.push(counter(name, help, value));
  }
  families.push(
    counter(
      "conclave_forwarding_forwarded_total",
      "Requests this member forwarded to the primary (retries included; reads sharing one read index count once).",
      forwarding.forwarded,
    ),
    counter(
      "conclave_forwarding_served_total",
      "Forwarded requests this member served as the primary.",
      forwarding.served,
    ),
    gauge(
      "conclave_forwarding_outstanding",
      "Forwarded requests waiting for the primary's answer now.",
      forwarding.outstanding,
    ),
    gauge("conclave_forwarding_serving", "Forwarded requests being served now.", forwarding.serving),
    counter(
      "conclave_forwarding_malformed_dropped_total",
      "Forward messages dropped as malformed, unexpected or from a non-member.",
      forwarding.malformedDropped,
    ),
    gauge("conclave_peers", "Other members this member knows.", metrics.peers.known),
    gauge(
      "conclave_peers_reachable",
      "Other members that answered this member's pings recently.",
      metrics.peers.reachable,
    ),
  );
  return families;
}
