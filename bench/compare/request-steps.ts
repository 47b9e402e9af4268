/**
 * Where a request's time goes, from the nodes' slow-request lines (src/admin/slow-requests.ts):
 * with `log.slow_request_ms = 0` every KV and SQL request is logged with its steps, and this
 * groups the lines by what the request was (a write or a read, entered at the primary or at a
 * secondary) and gives, for each step, the median time from the step before and from the start.
 * `npm run bench:compare -- --trace-steps` writes its table into the results; `node
 * bench/request-steps.ts LOG…` reads any node logs (a `conclave dev` cluster's, a production
 * node's).
 */

import { median } from "./stats.ts";

interface Step {
  readonly step: string;
  readonly atMs: number;
  readonly on?: string;
}

export interface SlowRequestLine {
  readonly request: string;
  readonly tookMs: number;
  readonly steps: readonly Step[];
}

/** The slow-request lines among pino's JSON lines (anything else is skipped). */
export function slowRequestLines(text: string): SlowRequestLine[] {
  const found: SlowRequestLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes('"slow request"')) continue;
    try {
      const parsed = JSON.parse(line) as Partial<SlowRequestLine> & { msg?: string };
      if (parsed.msg !== "slow request" || !Array.isArray(parsed.steps)) continue;
      if (typeof parsed.request !== "string" || typeof parsed.tookMs !== "number") continue;
      found.push({ request: parsed.request, tookMs: parsed.tookMs, steps: parsed.steps });
    } catch {
      // a torn or foreign line
    }
  }
  return found;
}

/** What kind of request a line is: "write at a secondary", "read at the primary", … */
function kindOf(line: SlowRequestLine): string {
  const read = line.request.startsWith("GET ") || line.request.startsWith("POST /v1/sql/query");
  const forwarded = line.steps.some((step) => step.step === "forwarded");
  return `${read ? "read" : "write"} entered at ${forwarded ? "a secondary" : "the primary"}`;
}

function stepName(step: Step): string {
  return step.on === undefined ? step.step : `primary: ${step.step}`;
}

const ms = (value: number | null): string => (value === null ? "–" : value.toFixed(3));

/**
 * A markdown table per kind of request: each step of the most common sequence with the median
 * time since the step before and since the request's headers, then the answer.
 */
export function summarizeRequestSteps(lines: readonly SlowRequestLine[]): string {
  const byKind = new Map<string, SlowRequestLine[]>();
  for (const line of lines) {
    const kind = kindOf(line);
    const ofKind = byKind.get(kind);
    if (ofKind === undefined) byKind.set(kind, [line]);
    else ofKind.push(line);
  }
  const sections: string[] = [];
  for (const [kind, ofKind] of [...byKind].sort(([a], [b]) => a.localeCompare(b))) {
    // Requests whose steps differ (a retry, a failure) would misalign the columns: the most
    // common sequence only.
    const bySequence = new Map<string, SlowRequestLine[]>();
    for (const line of ofKind) {
      const sequence = line.steps.map(stepName).join(" → ");
      const same = bySequence.get(sequence);
      if (same === undefined) bySequence.set(sequence, [line]);
      else same.push(line);
    }
    const [, common = []] = [...bySequence].sort(([, a], [, b]) => b.length - a.length)[0] ?? [];
    const first = common[0];
    if (first === undefined) continue;
    const rows = first.steps.map((step, at) => {
      const gaps = common.map((line) => (line.steps[at]?.atMs ?? 0) - (line.steps[at - 1]?.atMs ?? 0));
      const since = common.map((line) => line.steps[at]?.atMs ?? 0);
      return `| ${stepName(step)} | ${ms(median(gaps))} | ${ms(median(since))} |`;
    });
    const last = first.steps.length - 1;
    const answerGaps = common.map((line) => line.tookMs - (line.steps[last]?.atMs ?? 0));
    rows.push(
      `| answer written | ${ms(median(answerGaps))} | ${ms(median(common.map((line) => line.tookMs)))} |`,
    );
    sections.push(
      [
        `**${kind}** (${common.length} of ${ofKind.length} requests had these steps; medians, ms)`,
        "",
        "| step | since the step before | since the headers |",
        "|---|---:|---:|",
        ...rows,
      ].join("\n"),
    );
  }
  return sections.length === 0 ? "(no slow-request lines)" : sections.join("\n\n");
}
