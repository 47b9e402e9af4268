/** `npm run soak` arguments (pure: parsed into a typed result, every value bounded). */

export interface SoakOptions {
  /** How long faults and load run, in minutes (the checks after it add about a minute). */
  readonly minutes: number;
  readonly nodes: 3 | 5;
  /** Seeds the fault schedule and the linearizability clients, so a run can be repeated. */
  readonly seed: number;
  /** Acknowledged-write load: KV puts and SQL inserts together, per second. */
  readonly writesPerSecond: number;
  /** The run fails when any node's RSS went above this. */
  readonly rssMaxMb: number;
  /**
   * Every node's `cluster.snapshot_every_entries`, or null for the default (8,192). A low value
   * makes snapshot marks, and copies for members that fell behind, happen under the faults.
   */
  readonly snapshotEvery: number | null;
  /** False: the same load without faults (to tell what the faults cause from what time does). */
  readonly faults: boolean;
  /**
   * Each node in a network namespace of its own, and network cuts among the faults (root only;
   * test/e2e/network-lab.ts).
   */
  readonly partitions: boolean;
  /** Name part of the results file. */
  readonly label: string;
  /** Where the results file goes. */
  readonly outDir: string;
  readonly help: boolean;
}

export const usage = `npm run soak -- [options]

A real cluster of node processes on this machine under load and faults for a bounded time, then
checked: linearizable history, no acknowledged write lost or applied twice, every member with
the same database, bounded memory, no node that stopped by itself.

  --minutes N           time under faults, 0.1 to 240 (default 10)
  --nodes 3|5           cluster size (default 3)
  --seed N              fault schedule and client choices (default: from the clock)
  --writes-per-second N acknowledged KV puts + SQL inserts per second, 1 to 2000 (default 100)
  --faults on|off       inject faults (default on); off runs the same load without them
  --partitions on|off   each node in its own network namespace, and network cuts among the
                        faults: primary or a secondary isolated, a bridge, a deaf primary
                        (default off; needs root, ip and nft)
  --rss-max-mb N        fail when a node's RSS went above N MB, 100 to 4096 (default 250)
  --snapshot-every N    every node's cluster.snapshot_every_entries, 64 to 1000000 (default:
                        the node's, 8192); low values put snapshots among the faults
  --label TEXT          results file name part (default "soak")
  --out-dir DIR         where the results file goes (default bench/results)
  --help`;

export type ParsedSoakOptions = { ok: true; options: SoakOptions } | { ok: false; message: string };

function numberIn(name: string, text: string | undefined, min: number, max: number): number | string {
  const value = Number(text);
  if (text === undefined || text.trim() === "" || !Number.isFinite(value) || value < min || value > max) {
    return `${name} must be a number from ${min} to ${max} (got ${JSON.stringify(text ?? "")})`;
  }
  return value;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Sets one option from its flag and value; the problem, or null. */
function apply(options: Mutable<SoakOptions>, flag: string, value: string | undefined): string | null {
  const number = (min: number, max: number): number | string => numberIn(flag, value, min, max);
  let parsed: number | string;
  switch (flag) {
    case "--minutes":
      parsed = number(0.1, 240);
      if (typeof parsed === "number") options.minutes = parsed;
      return typeof parsed === "string" ? parsed : null;
    case "--nodes":
      if (value !== "3" && value !== "5")
        return `--nodes must be 3 or 5 (got ${JSON.stringify(value ?? "")})`;
      options.nodes = value === "3" ? 3 : 5;
      return null;
    case "--seed":
      parsed = number(0, Number.MAX_SAFE_INTEGER);
      if (typeof parsed === "number") options.seed = Math.floor(parsed);
      return typeof parsed === "string" ? parsed : null;
    case "--writes-per-second":
      parsed = number(1, 2000);
      if (typeof parsed === "number") options.writesPerSecond = parsed;
      return typeof parsed === "string" ? parsed : null;
    case "--snapshot-every":
      parsed = number(64, 1_000_000);
      if (typeof parsed === "number") options.snapshotEvery = Math.floor(parsed);
      return typeof parsed === "string" ? parsed : null;
    case "--rss-max-mb":
      parsed = number(100, 4096);
      if (typeof parsed === "number") options.rssMaxMb = parsed;
      return typeof parsed === "string" ? parsed : null;
    case "--faults":
      if (value !== "on" && value !== "off")
        return `--faults must be on or off (got ${JSON.stringify(value ?? "")})`;
      options.faults = value === "on";
      return null;
    case "--partitions":
      if (value !== "on" && value !== "off")
        return `--partitions must be on or off (got ${JSON.stringify(value ?? "")})`;
      options.partitions = value === "on";
      return null;
    case "--label":
      if (value === undefined || !/^[A-Za-z0-9._-]{1,64}$/.test(value))
        return "--label must be 1 to 64 letters, digits, dots, dashes or underscores";
      options.label = value;
      return null;
    case "--out-dir":
      if (value === undefined || value === "") return "--out-dir needs a directory";
      options.outDir = value;
      return null;
    default:
      return `unknown option ${JSON.stringify(flag)}; see --help`;
  }
}

export function parseSoakOptions(argv: readonly string[], now = Date.now()): ParsedSoakOptions {
  const options: Mutable<SoakOptions> = {
    minutes: 10,
    nodes: 3,
    seed: now % 1_000_000,
    writesPerSecond: 100,
    rssMaxMb: 250,
    snapshotEvery: null,
    faults: true,
    partitions: false,
    label: "soak",
    outDir: "bench/results",
    help: false,
  };
  for (let at = 0; at < argv.length; at++) {
    const flag = argv[at] as string;
    if (flag === "--help" || flag === "-h") {
      options.help = true;
      continue;
    }
    const value = argv[at + 1];
    at += 1;
    const problem = apply(options, flag, value);
    if (problem !== null) return { ok: false, message: problem };
  }
  return { ok: true, options };
}
