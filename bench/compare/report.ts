/**
 * From raw measurements to the comparison table (pure: no IO). Each figure is the median over
 * runs (failover: over every kill; lost writes: the sum), the ratio is Conclave/etcd of the
 * medians, and `better` says which direction wins (↑ higher is better, ↓ lower is better).
 */
import type { SystemName } from "./drivers.ts";
import type { LoadResult } from "./load.ts";
import type { KillMeasurement, LoadMeasurement, Measurements } from "./scenarios.ts";
import { round, spread } from "./stats.ts";

export type Better = "higher" | "lower" | null;

/** One row of the comparison before aggregation: a value per run (or per kill) for each system. */
export interface Figure {
  readonly group: string;
  readonly name: string;
  readonly better: Better;
  readonly etcd: readonly (number | null)[];
  readonly conclave: readonly (number | null)[];
  /** "sum" for counts like lost writes; "median" otherwise. */
  readonly aggregate?: "median" | "sum";
  /** Set when the etcd column is a reference figure from another test (e.g. SQL vs put). */
  readonly etcdReference?: string;
  /** The values are one per run, in run order, on both sides: each run's ratio is reported too. */
  readonly perRun?: boolean;
}

/** An aggregated row. */
export interface FigureRow {
  readonly group: string;
  readonly name: string;
  readonly better: Better;
  readonly etcd: { min: number | null; median: number | null; max: number | null };
  readonly conclave: { min: number | null; median: number | null; max: number | null };
  readonly ratio: number | null;
  /**
   * Conclave/etcd of each run (figures measured once per run, with more than one run): the
   * issue's targets are ratios measured in the same run, and this machine's speed moves by up to
   * ±30 % between runs, so the ratio of the medians alone can hide a run that missed.
   */
  readonly runRatios: readonly (number | null)[];
  readonly winner: SystemName | "tie" | null;
  readonly etcdReference: string | null;
}

/** Conclave/etcd, null when either is missing or etcd is 0. */
export function ratioOf(conclave: number | null, etcd: number | null): number | null {
  if (conclave === null || etcd === null || etcd === 0) return null;
  return round(conclave / etcd, 2);
}

/** Which system's value is better given the direction; null when undecidable. */
export function winnerOf(
  better: Better,
  conclave: number | null,
  etcd: number | null,
): SystemName | "tie" | null {
  if (better === null || conclave === null || etcd === null) return null;
  if (conclave === etcd) return "tie";
  const conclaveHigher = conclave > etcd;
  return (better === "higher") === conclaveHigher ? "conclave" : "etcd";
}

function sumOrNull(values: readonly (number | null)[]): number | null {
  const present = values.filter((x): x is number => x !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0);
}

/** Aggregates one figure. */
export function aggregate(figure: Figure): FigureRow {
  const summarise = (values: readonly (number | null)[]) => {
    if (figure.aggregate !== "sum") return spread(values);
    const total = sumOrNull(values);
    return { min: total, median: total, max: total };
  };
  const etcd = summarise(figure.etcd);
  const conclave = summarise(figure.conclave);
  return {
    group: figure.group,
    name: figure.name,
    better: figure.better,
    etcd,
    conclave,
    ratio: ratioOf(conclave.median, etcd.median),
    runRatios:
      figure.perRun === true && figure.etcd.length > 1 && figure.etcd.length === figure.conclave.length
        ? figure.conclave.map((value, run) => ratioOf(value, figure.etcd[run] ?? null))
        : [],
    winner: winnerOf(figure.better, conclave.median, etcd.median),
    etcdReference: figure.etcdReference ?? null,
  };
}

type Pick = (result: LoadResult) => number | null;

/**
 * CPU per operation in µs from CPU as % of one core and operations per second, null without
 * operations: what one operation cost the servers. Once both cores of the machine are busy,
 * throughput follows it.
 */
export function cpuMicrosPerOp(cpuPercent: number, opsPerSecond: number | null): number | null {
  return opsPerSecond !== null && opsPerSecond > 0 ? Math.round((cpuPercent * 10_000) / opsPerSecond) : null;
}

const opsPerSecond: Pick = (r) => r.opsPerSecond;
const p50: Pick = (r) => r.latency.p50Ms;
const p99: Pick = (r) => r.latency.p99Ms;
const serverCpu: Pick = (r) => r.cost.serverCpuPercent;
const serverCpuPerOp: Pick = (r) => cpuMicrosPerOp(r.cost.serverCpuPercent, r.opsPerSecond);
const clientCpu: Pick = (r) => r.cost.clientCpuPercent;
const diskPerByte: Pick = (r) => r.diskBytesPerPayloadByte;
const durableWritesPerOp: Pick = (r) => r.durableWritesPerOp ?? null;
const durableBytesPerByte: Pick = (r) => r.durableBytesPerPayloadByte ?? null;

function values(
  loads: readonly LoadMeasurement[],
  system: SystemName,
  test: string,
  pick: Pick,
): (number | null)[] {
  return loads.filter((m) => m.system === system && m.test === test).map((m) => pick(m.result));
}

const loadLabels: Readonly<Record<string, string>> = {
  seq: "sequential put (1 in flight)",
  put64: "put ×64",
  put256: "put ×256",
  getlin: "linearizable get ×64",
  getser: "serializable / consistency=none get ×64",
};

function loadFigures(
  loads: readonly LoadMeasurement[],
  test: string,
  label: string,
  group: string,
): Figure[] {
  const row = (name: string, better: Better, pick: Pick): Figure => ({
    group,
    name: `${label}: ${name}`,
    better,
    etcd: values(loads, "etcd", test, pick),
    conclave: values(loads, "conclave", test, pick),
    perRun: true,
  });
  return [
    row("ops/s", "higher", opsPerSecond),
    row("p50 ms", "lower", p50),
    row("p99 ms", "lower", p99),
    row("server CPU % of a core", null, serverCpu),
    row("server CPU µs per op", "lower", serverCpuPerOp),
    row("client CPU % of a core", null, clientCpu),
  ];
}

function sqlFigures(loads: readonly LoadMeasurement[]): Figure[] {
  const rows: Figure[] = [];
  for (const [test, label, reference, referenceLabel] of [
    ["sqlInsert64", "SQL single-row INSERT ×64", "put64", "etcd put ×64"],
    ["sqlSelect64", "SQL point SELECT by key ×64 (linearizable)", "getlin", "etcd linearizable get ×64"],
  ] as const) {
    if (!loads.some((m) => m.test === test)) continue;
    for (const [name, better, pick] of [
      ["ops/s", "higher", opsPerSecond],
      ["p50 ms", "lower", p50],
      ["p99 ms", "lower", p99],
    ] as const) {
      rows.push({
        group: "SQL (Conclave; etcd column = reference)",
        name: `${label}: ${name}`,
        better,
        etcd: values(loads, "etcd", reference, pick),
        conclave: values(loads, "conclave", test, pick),
        etcdReference: referenceLabel,
        perRun: true,
      });
    }
  }
  return rows;
}

function failoverFigures(kills: readonly KillMeasurement[]): Figure[] {
  if (kills.length === 0) return [];
  const of = (system: SystemName, pick: (k: KillMeasurement) => number | null) =>
    kills.filter((k) => k.system === system).map(pick);
  const group = "failover (SIGKILL of the leader)";
  return [
    {
      group,
      name: "kill → first ack of a put issued after it, ms",
      better: "lower",
      etcd: of("etcd", (k) => k.kill.killToFirstNewAckMs),
      conclave: of("conclave", (k) => k.kill.killToFirstNewAckMs),
    },
    {
      group,
      name: "kills",
      better: null,
      etcd: of("etcd", () => 1),
      conclave: of("conclave", () => 1),
      aggregate: "sum",
    },
    {
      group,
      name: "acknowledged puts",
      better: null,
      etcd: of("etcd", (k) => k.kill.acked),
      conclave: of("conclave", (k) => k.kill.acked),
      aggregate: "sum",
    },
    {
      group,
      name: "acknowledged puts lost",
      better: "lower",
      etcd: of("etcd", (k) => k.kill.lost),
      conclave: of("conclave", (k) => k.kill.lost),
      aggregate: "sum",
    },
  ];
}

function growthFigures(loads: readonly LoadMeasurement[]): Figure[] {
  const tests = [...new Set(loads.map((m) => m.test).filter((t) => t.startsWith("growth-")))];
  return tests.flatMap((test) => {
    const [, nodes, bytes] = test.split("-");
    const label = `put ×64, ${nodes?.slice(1)} nodes, ${Number(bytes) >= 1024 ? `${Number(bytes) / 1024} KB` : `${bytes} B`}`;
    const row = (name: string, better: Better, pick: Pick): Figure => ({
      group: "growth",
      name: `${label}: ${name}`,
      better,
      etcd: values(loads, "etcd", test, pick),
      conclave: values(loads, "conclave", test, pick),
      perRun: true,
    });
    return [
      row("ops/s", "higher", opsPerSecond),
      row("p99 ms", "lower", p99),
      row("disk bytes written per payload byte (≈)", "lower", diskPerByte),
      ...durableRows(loads, test, (name, better, pick) => row(name, better, pick)),
    ];
  });
}

/**
 * Fsyncs per write and log bytes written durably per payload byte, from the members' metrics
 * (etcd: WAL fsyncs + backend commits, WAL bytes; Conclave: the log's and hard state's durable
 * writes), when the test scraped them.
 */
function durableRows(
  loads: readonly LoadMeasurement[],
  test: string,
  row: (name: string, better: Better, pick: Pick) => Figure,
): Figure[] {
  const scraped = loads.some((m) => m.test === test && m.result.durableWritesPerOp != null);
  if (!scraped) return [];
  return [
    row("fsyncs per write, all members (metrics)", "lower", durableWritesPerOp),
    row("log bytes fsynced per payload byte, all members (metrics)", "lower", durableBytesPerByte),
  ];
}

/** Every figure the measurements support, in table order. */
export function buildFigures(measurements: Measurements): FigureRow[] {
  const { loads } = measurements;
  const figures: Figure[] = [];
  for (const [test, label] of Object.entries(loadLabels)) {
    if (loads.some((m) => m.test === test)) figures.push(...loadFigures(loads, test, label, "key-value"));
  }
  if (loads.some((m) => m.test === "put64")) {
    figures.push({
      group: "key-value",
      name: "put ×64: disk bytes written per payload byte (≈)",
      better: "lower",
      etcd: values(loads, "etcd", "put64", diskPerByte),
      conclave: values(loads, "conclave", "put64", diskPerByte),
      perRun: true,
    });
    for (const test of ["put64", "put256"] as const) {
      const label = loadLabels[test] ?? test;
      figures.push(
        ...durableRows(loads, test, (name, better, pick) => ({
          group: "key-value",
          name: `${label}: ${name}`,
          better,
          etcd: values(loads, "etcd", test, pick),
          conclave: values(loads, "conclave", test, pick),
          perRun: true,
        })),
      );
    }
  }
  figures.push(...sqlFigures(loads), ...failoverFigures(measurements.kills), ...growthFigures(loads));
  return figures.map(aggregate);
}

/** A number for a table cell: integers from 100 up, 1 decimal from 10, else 2; "–" for none. */
export function formatNumber(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "–";
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return Math.round(value).toLocaleString("en");
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The ratio cell: "1.52× ↑" (↑ higher is better, ↓ lower is better). */
export function formatRatio(row: FigureRow): string {
  const arrow = row.better === "higher" ? " ↑" : row.better === "lower" ? " ↓" : "";
  return row.ratio === null ? `–${arrow}` : `${row.ratio.toFixed(2)}×${arrow}`;
}

function winnerCell(row: FigureRow): string {
  if (row.winner === null) return "";
  return row.winner === "tie" ? "tie" : row.winner === "conclave" ? "Conclave" : "etcd";
}

const headers = ["figure", "etcd", "Conclave", "Conclave/etcd", "better"];

function rowCells(row: FigureRow, withSpread: boolean): string[] {
  const cell = (s: FigureRow["etcd"]) =>
    withSpread && s.min !== s.max
      ? `${formatNumber(s.median)} [${formatNumber(s.min)}–${formatNumber(s.max)}]`
      : formatNumber(s.median);
  const reference = row.etcdReference === null ? "" : ` (${row.etcdReference})`;
  const runs =
    withSpread && row.runRatios.length > 0
      ? ` (runs ${row.runRatios.map((r) => (r === null ? "–" : r.toFixed(2))).join(" / ")})`
      : "";
  return [
    row.name,
    `${cell(row.etcd)}${reference}`,
    cell(row.conclave),
    `${formatRatio(row)}${runs}`,
    winnerCell(row),
  ];
}

/** The table as aligned plain text, one block per group. */
export function renderTextTable(rows: readonly FigureRow[]): string {
  const body = rows.map((row) => rowCells(row, false));
  const widths = headers.map((h, at) => Math.max(h.length, ...body.map((cells) => (cells[at] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, at) => (at === 0 ? c.padEnd(widths[at] ?? 0) : c.padStart(widths[at] ?? 0))).join("  ");
  const out = [line(headers), widths.map((w) => "-".repeat(w)).join("  ")];
  let group = "";
  rows.forEach((row, at) => {
    if (row.group !== group) {
      group = row.group;
      out.push(`[${group}]`);
    }
    out.push(line(body[at] ?? []));
  });
  return out.join("\n");
}

/** The table in Markdown, cells "median [min–max]" across runs, and each run's own ratio. */
export function renderMarkdownTable(rows: readonly FigureRow[]): string {
  const escapePipes = (text: string) => text.replaceAll("|", "\\|");
  const out = [
    `| ${headers.join(" | ")} |`,
    `|${headers.map((_, at) => (at === 0 ? "---" : "---:")).join("|")}|`,
  ];
  let group = "";
  for (const row of rows) {
    if (row.group !== group) {
      group = row.group;
      out.push(`| **${escapePipes(group)}** | | | | |`);
    }
    out.push(`| ${rowCells(row, true).map(escapePipes).join(" | ")} |`);
  }
  return out.join("\n");
}
