/**
 * Command-line options of `npm run bench:compare` (pure: parsing only, no side effects).
 * A bad option is an expected outcome, so parsing returns a typed result naming the problem.
 */
import type { CpuScheduling } from "../../src/cli/cpu-scheduling.ts";
import type { ClientKind } from "./http-client.ts";

/** Every test name `--only` accepts, in the order they run. */
export const testNames = ["seq", "put64", "put256", "getlin", "getser", "sql", "failover", "growth"] as const;
/** One test of the comparison. */
export type TestName = (typeof testNames)[number];

/** etcd's heartbeat interval / election timeout in ms; 50/500 is Conclave's `lan` profile. */
export interface EtcdTiming {
  readonly heartbeatMs: number;
  readonly electionMs: number;
}

/** The options a run uses (recorded in the results file). */
export interface CompareOptions {
  readonly runs: number;
  readonly quick: boolean;
  readonly only: readonly TestName[];
  readonly nodes: 3 | 5;
  readonly memory: boolean;
  readonly memoryKeys: number;
  readonly etcdTiming: EtcdTiming;
  /** Leader kills per run and per system. */
  readonly killsPerRun: number;
  /** Timed operations per load test (after the warm-up). */
  readonly opsPerTest: number;
  /**
   * Slices each main-group load test is measured in, the systems alternating A B, B A, … within
   * the run (not SQL, which runs on Conclave alone); the slices are summed into one figure.
   */
  readonly slices: number;
  readonly warmupOps: number;
  /** Untimed puts (64 in flight) into every fresh cluster before its first test: see clusterWarmupOps. */
  readonly clusterWarmupOps: number;
  /** Wall-clock cap of one load test: it stops issuing requests after this. */
  readonly testWallMsMax: number;
  readonly label: string;
  readonly outDir: string;
  /** Run Conclave from its TypeScript sources (as in a checkout) instead of the emitted dist/. */
  readonly source: boolean;
  /** Extra Node flags for the Conclave servers only (e.g. a V8 heap cap), after the defaults. */
  readonly serverNodeFlags: readonly string[];
  /** Conclave logs every request's steps (log.slow_request_ms = 0); the results say where time went. */
  readonly traceSteps: boolean;
  /**
   * Conclave's servers run under V8's CPU profiler (`--cpu-prof`, whole life: start, warm-up and
   * every test) and the results show the frames and files their time went to (cpu-profile.ts).
   */
  readonly cpuProfile: boolean;
  /**
   * What the cluster not under test does: "paused" (SIGSTOP, the default: it takes no CPU from
   * the one measured) or "running" (idle, heartbeats only, as before session 19).
   */
  readonly idleCluster: IdleCluster;
  /**
   * Where the load tests send their requests: "every" member in turn (the default, as the etcd
   * harness does: two requests in three reach a follower, which forwards a write to the leader),
   * or the "primary" only (the leader, looked up again at each of the system's turns; as
   * Conclave's own client sends its writes), the same for both systems.
   */
  readonly sendTo: SendTo;
  /**
   * The load client's build: "lean" (our HTTP/1.1 client on `net` sockets, the default) or
   * "node-http" (node:http's client, as every run before session 27); the same for both systems.
   */
  readonly client: ClientKind;
  /**
   * Each system's CPU scheduling policy: as shipped by default (Conclave's servers put themselves
   * under SCHED_BATCH, `node.cpu_scheduling`; etcd keeps the policy it was started with), or the
   * same for both, to see what the policy alone is worth to each.
   */
  readonly conclaveScheduling: CpuScheduling;
  readonly etcdScheduling: CpuScheduling;
  readonly help: boolean;
}

/** See CompareOptions.idleCluster. */
export type IdleCluster = "paused" | "running";

/** See CompareOptions.sendTo. */
export type SendTo = "every" | "primary";

export type ParseResult = { ok: true; options: CompareOptions } | { ok: false; message: string };

/** Most runs accepted: a full run of 3 takes ~15 minutes, 20 is a long night. */
export const runsMax = 20;
const killsMax = 50;
const opsMax = 1_000_000;
/** Most slices per test: each costs both clusters a turn (SIGCONT, a leader, a probe write each). */
const slicesMax = 20;
const memoryKeysMax = 10_000_000;

export const usage = `usage: npm run bench:compare -- [options]
  --runs N                 runs (fresh clusters each), median reported (default 3; 1 with --quick)
  --quick                  smoke run: 2,000 ops per load test, 3 kills, under ~3 minutes
  --only t1,t2             tests: ${testNames.join(",")} (default: all)
  --nodes 3|5              cluster size for the main tests (default 3; growth always does 3 and 5)
  --etcd-timing H/E        etcd heartbeat/election ms: 100/1000 (etcd default) or 50/500 (default 100/1000)
  --kills N                leader kills per run and per system (default 9; 3 with --quick)
  --ops N                  timed operations per load test (default 20000; 2000 with --quick)
  --slices N               measure each main-group load test in N slices, the systems alternating
                           A B, B A, … within the run, summed into one figure per system (default 4;
                           1 with --quick; 1 = one stretch each, as before 2026-12-06 evening)
  --cluster-warmup N       untimed puts (64 in flight) into each fresh cluster before its first test
                           (default 50000; 0 with --quick)
  --memory                 only the memory test: N keys of 100 B into 3-node Conclave, RSS per node
  --memory-keys N          keys for --memory (default 1000000)
  --label NAME             results file label (default: quick|full)
  --out-dir DIR            where results go (default bench/results)
  --server-node-flags "F"  extra Node flags for the Conclave servers only, e.g. "--max-old-space-size=96"
  --source                 run Conclave from its TypeScript sources (type stripping), as \`conclave\`
                           does in a checkout, instead of the JavaScript that tsc emits into dist/
                           (what an installed package runs; built at the start of the bench)
  --trace-steps            Conclave's servers log every request's steps (log.slow_request_ms = 0) and
                           the results show, per test, where its requests spent their time; the logging
                           costs throughput, so use it with --only seq (docs/benchmarks.md)
  --cpu-profile            Conclave's servers run under V8's CPU profiler (--cpu-prof) and the results
                           show the frames and files with the most CPU time, all servers together
                           (the profiles are kept in a temporary folder the bench names, for DevTools)
  --idle-cluster paused|running
                           the cluster not being measured is stopped with SIGSTOP (paused, default)
                           so it takes no CPU from the one measured, or left running idle
  --send-to every|primary  the load tests' requests go to every member in turn (default, as the etcd
                           harness), or to each system's leader only (as Conclave's client sends writes)
  --client lean|node-http  the load client, the same for both systems: our lean HTTP/1.1 client (default)
                           or node:http's (every run before 2026-12-06; it costs ~2.5x the CPU per request)
  --conclave-cpu-scheduling batch|inherit
                           Conclave's servers under SCHED_BATCH (batch, default: node.cpu_scheduling as
                           shipped) or the policy the bench runs under (inherit)
  --etcd-cpu-scheduling inherit|batch
                           etcd under the policy the bench runs under (inherit, default: as shipped) or
                           put under SCHED_BATCH with chrt (batch), to compare both under one policy`;

function positiveInteger(text: string | undefined, name: string, max: number): number | string {
  if (text === undefined || !/^\d{1,9}$/.test(text))
    return `${name} needs a whole number, not ${text ?? "nothing"}`;
  const value = Number(text);
  if (value < 1 || value > max) return `${name} must be from 1 to ${max}, not ${value}`;
  return value;
}

function nonNegativeInteger(text: string | undefined, name: string, max: number): number | string {
  if (text === "0") return 0;
  return positiveInteger(text, name, max);
}

function parseTiming(text: string | undefined): EtcdTiming | string {
  if (text === "100/1000") return { heartbeatMs: 100, electionMs: 1000 };
  if (text === "50/500") return { heartbeatMs: 50, electionMs: 500 };
  return `--etcd-timing is 100/1000 or 50/500, not ${text ?? "nothing"}`;
}

function parseOnly(text: string | undefined): TestName[] | string {
  const names = (text ?? "").split(",").filter((name) => name !== "");
  const known: ReadonlySet<string> = new Set(testNames);
  const unknown = names.filter((name) => !known.has(name));
  if (names.length === 0 || unknown.length > 0) {
    return `--only takes a comma-separated list of ${testNames.join(", ")}; unknown: ${unknown.join(",") || "(empty)"}`;
  }
  return testNames.filter((name) => names.includes(name));
}

interface Draft {
  runs?: number;
  quick: boolean;
  only: TestName[];
  nodes: 3 | 5;
  memory: boolean;
  memoryKeys: number;
  etcdTiming: EtcdTiming;
  kills?: number;
  ops?: number;
  slices?: number;
  clusterWarmup?: number;
  label?: string;
  outDir: string;
  source: boolean;
  serverNodeFlags: string[];
  traceSteps: boolean;
  cpuProfile: boolean;
  idleCluster: IdleCluster;
  sendTo: SendTo;
  client: ClientKind;
  conclaveScheduling: CpuScheduling;
  etcdScheduling: CpuScheduling;
  help: boolean;
}

/** Applies one option (and its value) to `draft`; returns a problem or null. */
function applyOption(draft: Draft, name: string, value: string | undefined): string | null {
  const set = <T>(parsed: T | string, apply: (v: T) => void): string | null => {
    if (typeof parsed === "string") return parsed;
    apply(parsed);
    return null;
  };
  const assign = (apply: () => void): null => {
    apply();
    return null;
  };
  switch (name) {
    case "--runs":
      return set(positiveInteger(value, name, runsMax), (v) => (draft.runs = v));
    case "--kills":
      return set(positiveInteger(value, name, killsMax), (v) => (draft.kills = v));
    case "--ops":
      return set(positiveInteger(value, name, opsMax), (v) => (draft.ops = v));
    case "--slices":
      return set(positiveInteger(value, name, slicesMax), (v) => (draft.slices = v));
    case "--cluster-warmup":
      return set(nonNegativeInteger(value, name, opsMax), (v) => (draft.clusterWarmup = v));
    case "--memory-keys":
      return set(positiveInteger(value, name, memoryKeysMax), (v) => (draft.memoryKeys = v));
    case "--nodes":
      return value === "3" || value === "5"
        ? set(Number(value) as 3 | 5, (v) => (draft.nodes = v))
        : "--nodes is 3 or 5";
    case "--etcd-timing":
      return set(parseTiming(value), (v) => (draft.etcdTiming = v));
    case "--only":
      return set(parseOnly(value), (v) => (draft.only = v));
    case "--label":
      return value !== undefined && /^[A-Za-z0-9._-]{1,40}$/.test(value)
        ? assign(() => (draft.label = value))
        : "--label is 1 to 40 letters, digits, '.', '_' or '-'";
    case "--server-node-flags": {
      const flags = parseNodeFlags(value, name);
      return typeof flags === "string" ? flags : assign(() => (draft.serverNodeFlags = flags));
    }
    case "--idle-cluster":
      return value === "paused" || value === "running"
        ? assign(() => (draft.idleCluster = value))
        : `--idle-cluster is paused or running, not ${value ?? "nothing"}`;
    case "--send-to":
      return value === "every" || value === "primary"
        ? assign(() => (draft.sendTo = value))
        : `--send-to is every or primary, not ${value ?? "nothing"}`;
    case "--client":
      return value === "lean" || value === "node-http"
        ? assign(() => (draft.client = value))
        : `--client is lean or node-http, not ${value ?? "nothing"}`;
    case "--conclave-cpu-scheduling":
    case "--etcd-cpu-scheduling":
      if (value !== "batch" && value !== "inherit")
        return `${name} is batch or inherit, not ${value ?? "nothing"}`;
      return assign(() => {
        if (name === "--etcd-cpu-scheduling") draft.etcdScheduling = value;
        else draft.conclaveScheduling = value;
      });
    case "--out-dir":
      return value === undefined ? "--out-dir needs a directory" : assign(() => (draft.outDir = value));
    default:
      return `unknown option ${name}`;
  }
}

const flags: Readonly<Record<string, (draft: Draft) => void>> = {
  "--quick": (draft) => (draft.quick = true),
  "--memory": (draft) => (draft.memory = true),
  "--source": (draft) => (draft.source = true),
  "--trace-steps": (draft) => (draft.traceSteps = true),
  "--cpu-profile": (draft) => (draft.cpuProfile = true),
  "--help": (draft) => (draft.help = true),
  "-h": (draft) => (draft.help = true),
};

/** Parses the arguments after the script name; defaults depend on `--quick`. */
export function parseOptions(argv: readonly string[]): ParseResult {
  const draft: Draft = {
    quick: false,
    only: [...testNames],
    nodes: 3,
    memory: false,
    memoryKeys: 1_000_000,
    etcdTiming: { heartbeatMs: 100, electionMs: 1000 },
    outDir: "bench/results",
    source: false,
    serverNodeFlags: [],
    traceSteps: false,
    cpuProfile: false,
    idleCluster: "paused",
    sendTo: "every",
    client: "lean",
    conclaveScheduling: "batch",
    etcdScheduling: "inherit",
    help: false,
  };
  for (let at = 0; at < argv.length; at++) {
    const arg = argv[at] ?? "";
    const [name, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const flag = flags[name ?? ""];
    if (flag !== undefined) {
      flag(draft);
      continue;
    }
    const value = inline ?? argv[++at];
    const problem = applyOption(draft, name ?? "", value);
    if (problem !== null) return { ok: false, message: problem };
  }
  const quick = draft.quick;
  return {
    ok: true,
    options: {
      runs: draft.runs ?? (quick ? 1 : 3),
      quick,
      only: draft.only,
      nodes: draft.nodes,
      memory: draft.memory,
      memoryKeys: draft.memoryKeys,
      etcdTiming: draft.etcdTiming,
      killsPerRun: draft.kills ?? (quick ? 3 : 9),
      opsPerTest: draft.ops ?? (quick ? 2000 : 20_000),
      slices: draft.slices ?? (quick ? 1 : 4),
      warmupOps: quick ? 200 : 1000,
      clusterWarmupOps: draft.clusterWarmup ?? (quick ? 0 : 50_000),
      testWallMsMax: quick ? 20_000 : 120_000,
      label: draft.label ?? (draft.memory ? "memory" : quick ? "quick" : "full"),
      outDir: draft.outDir,
      source: draft.source,
      serverNodeFlags: draft.serverNodeFlags,
      traceSteps: draft.traceSteps,
      cpuProfile: draft.cpuProfile,
      idleCluster: draft.idleCluster,
      sendTo: draft.sendTo,
      client: draft.client,
      conclaveScheduling: draft.conclaveScheduling,
      etcdScheduling: draft.etcdScheduling,
      help: draft.help,
    },
  };
}

/** Node flags given as one argument ("--a=1 --b"); the problem when they are not flags. */
function parseNodeFlags(value: string | undefined, name: string): string[] | string {
  const flags = (value ?? "").split(/\s+/).filter((flag) => flag !== "");
  return flags.length > 0 && flags.every((flag) => /^--[a-z0-9-]+(=[A-Za-z0-9._/-]+)?$/.test(flag))
    ? flags
    : `${name} takes Node flags such as "--max-old-space-size=96"`;
}

/** `--label` or `--out-dir` of the smaller bench scripts: null when set, else the problem. */
function setLabelOrOutDir(
  options: { label: string; outDir: string },
  name: "--label" | "--out-dir",
  value: string | undefined,
): string | null {
  if (name === "--out-dir") {
    if (value === undefined) return "--out-dir needs a directory";
    options.outDir = value;
  } else {
    if (value === undefined || !/^[A-Za-z0-9._-]{1,40}$/.test(value))
      return "--label is 1 to 40 letters, digits, '.', '_' or '-'";
    options.label = value;
  }
  return null;
}

/** Options of `npm run bench:warmup` (warmup-curve.ts). */
export interface CurveOptions {
  readonly windows: number;
  readonly puts: number;
  readonly label: string;
  readonly outDir: string;
}

const curveWindowsMax = 30;
const curvePutsMax = 100_000;

/** Parses `npm run bench:warmup` arguments; returns the options or a problem naming the fix. */
export function parseCurveOptions(argv: readonly string[]): CurveOptions | string {
  const options = { windows: 10, puts: 10_000, label: "warmup", outDir: "bench/results" };
  for (let at = 0; at < argv.length; at++) {
    const name = argv[at];
    const value = argv[++at];
    if (name === "--windows" || name === "--puts") {
      const max = name === "--windows" ? curveWindowsMax : curvePutsMax;
      const parsed = positiveInteger(value, name, max);
      if (typeof parsed === "string") return parsed;
      if (name === "--windows") options.windows = parsed;
      else options.puts = parsed;
    } else if (name === "--label" || name === "--out-dir") {
      const problem = setLabelOrOutDir(options, name, value);
      if (problem !== null) return problem;
    } else {
      return `unknown option ${name ?? ""}; options: --windows N (default 10), --puts N per window (default 10000), --label L, --out-dir D`;
    }
  }
  return options;
}

/** `npm run bench:ab` options (bench/compare/ab.ts). */
export interface AbOptions {
  /** The git revision the working tree is measured against. */
  readonly base: string;
  readonly rounds: number;
  /** Puts per round per build. */
  readonly ops: number;
  /** Untimed puts into each fresh cluster before the first round (V8's warm-up). */
  readonly warmup: number;
  readonly inFlight: number;
  /** Node flags for the change build's servers only (to measure a flag: `--base HEAD`). */
  readonly changeNodeFlags: readonly string[];
  readonly label: string;
  readonly outDir: string;
}

const abRoundsMax = 40;
const abOpsMax = 200_000;
const abWarmupMax = 1_000_000;
const abInFlightMax = 1024;

export function parseAbOptions(argv: readonly string[]): AbOptions | string {
  const options = {
    base: "HEAD",
    rounds: 10,
    ops: 10_000,
    warmup: 50_000,
    inFlight: 64,
    changeNodeFlags: [] as string[],
    label: "ab",
    outDir: "bench/results",
  };
  const counts = {
    "--rounds": ["rounds", abRoundsMax],
    "--ops": ["ops", abOpsMax],
    "--warmup": ["warmup", abWarmupMax],
    "--in-flight": ["inFlight", abInFlightMax],
  } as const;
  for (let at = 0; at < argv.length; at++) {
    const name = argv[at] ?? "";
    const value = argv[++at];
    if (name in counts) {
      const [field, max] = counts[name as keyof typeof counts];
      const parsed =
        field === "warmup" ? nonNegativeInteger(value, name, max) : positiveInteger(value, name, max);
      if (typeof parsed === "string") return parsed;
      options[field] = parsed;
    } else if (name === "--base") {
      // A revision git understands, never an option of git's (no leading '-').
      if (value === undefined || !/^[A-Za-z0-9._/~^@{}][A-Za-z0-9._/~^@{}-]{0,99}$/.test(value))
        return "--base needs a git revision (a commit, branch or tag, e.g. HEAD~1 or main)";
      options.base = value;
    } else if (name === "--change-node-flags") {
      const flags = parseNodeFlags(value, name);
      if (typeof flags === "string") return flags;
      options.changeNodeFlags = flags;
    } else if (name === "--label" || name === "--out-dir") {
      const problem = setLabelOrOutDir(options, name, value);
      if (problem !== null) return problem;
    } else {
      return `unknown option ${name}; options: --base REV (default HEAD), --rounds N (default 10), --ops N per round (default 10000), --warmup N (default 50000), --in-flight N (default 64), --change-node-flags "F", --label L, --out-dir D`;
    }
  }
  return options;
}
