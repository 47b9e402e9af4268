/**
 * The top frames of V8 CPU profiles (`node --cpu-prof`, the `.cpuprofile` JSON), as issue #7 asks
 * for where a target is missed: each frame's self time as a share of the busy samples, and each
 * source file's inclusive share (a sample counts once for every file on its stack). Several
 * profiles (the three servers of a run) are summed, so the shares are of the cluster's busy time.
 *
 * "Busy" leaves out `(idle)`: the thread waiting in the event loop; a pause (a stopped process)
 * counts as one sampling interval. V8's profiler samples wall time, so on a machine with fewer
 * cores than busy threads a native call during which the thread lost its core is charged with the
 * wait (docs/benchmarks.md, session 23); read the native rows with that in mind.
 *
 * `npm run bench:compare -- --cpu-profile` profiles the servers and puts the tables in the
 * results; `node bench/profile-top.ts FILE.cpuprofile…` prints them for any profiles.
 */

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** One node of a `.cpuprofile`'s call tree (the fields used here). */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

/** A `.cpuprofile` document (the fields used here). */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** The node sampled at each tick. */
  readonly samples: readonly number[];
  /** µs since the previous sample, one per sample. */
  readonly timeDeltas: readonly number[];
}

export interface FrameShare {
  /** `name (file:line)`, or V8's own entry (`(garbage collector)`, `(program)`). */
  readonly frame: string;
  /** Share of the busy time, 0–1. */
  readonly share: number;
}

export interface ProfileSummary {
  /** Busy time summed over the profiles, ms. */
  readonly busyMs: number;
  /** Frames by self time, largest first. */
  readonly selfFrames: readonly FrameShare[];
  /** Source files by inclusive time, largest first (`frame` is the file). */
  readonly files: readonly FrameShare[];
}

/** Largest `.cpuprofile` accepted, so a wrong file fails with a message, not an out-of-memory. */
export const cpuProfileBytesMax = 512 * 1024 * 1024;

/** Checks the shape of a parsed `.cpuprofile`; throws naming what is wrong. */
export function asCpuProfile(parsed: unknown, source: string): CpuProfile {
  const candidate = parsed as Partial<CpuProfile> | null;
  if (
    candidate === null ||
    typeof candidate !== "object" ||
    !Array.isArray(candidate.nodes) ||
    !Array.isArray(candidate.samples) ||
    !Array.isArray(candidate.timeDeltas)
  ) {
    throw new Error(
      `${source} is not a V8 CPU profile (no nodes, samples and timeDeltas arrays); pass the .cpuprofile files node --cpu-prof wrote`,
    );
  }
  if (candidate.samples.length !== candidate.timeDeltas.length) {
    throw new Error(
      `${source}: ${candidate.samples.length} samples but ${candidate.timeDeltas.length} timeDeltas`,
    );
  }
  const badNode = candidate.nodes.findIndex((node: Partial<ProfileNode> | null) => !isProfileNode(node));
  if (badNode >= 0) {
    throw new Error(
      `${source}: node ${badNode} has no numeric id or no callFrame (functionName, url, lineNumber); is it a file node --cpu-prof wrote?`,
    );
  }
  return candidate as CpuProfile;
}

function isProfileNode(node: Partial<ProfileNode> | null): boolean {
  const frame = node?.callFrame;
  return (
    typeof node?.id === "number" &&
    typeof frame === "object" &&
    frame !== null &&
    typeof frame.functionName === "string" &&
    typeof frame.url === "string" &&
    typeof frame.lineNumber === "number" &&
    (node.children === undefined || Array.isArray(node.children))
  );
}

const idleFrame = "(idle)";
/** A gap between samples longer than this many typical intervals is a pause (see below). */
const pauseIntervals = 20;

/** The median gap between samples (the sampling interval, 1 ms by default). */
function typicalIntervalUs(deltas: readonly number[]): number {
  const sorted = deltas.filter((delta) => delta > 0).sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? 0;
}

function fileOf(url: string): string {
  if (url.startsWith("node:")) return url; // node:internal/streams/writable, node:_http_server, …
  const path = url.replace(/^file:\/\//, "");
  // Paths inside the project (src/…, dist/…, node_modules/<package>) read better than absolute ones.
  const packageAt = path.lastIndexOf("/node_modules/");
  if (packageAt >= 0) return `node_modules/${path.slice(packageAt + 14).split("/")[0] ?? ""}`;
  const projectAt = path.search(/\/(src|dist|bench)\//);
  return projectAt >= 0 ? path.slice(projectAt + 1) : path;
}

function frameOf(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === "" ? "(anonymous)" : functionName;
  return url === "" ? name : `${name} (${fileOf(url)}:${lineNumber + 1})`;
}

/** Self and inclusive-by-file shares of the busy time of `profiles` together. */
export function summarizeCpuProfiles(profiles: readonly CpuProfile[]): ProfileSummary {
  const selfUs = new Map<string, number>();
  const fileUs = new Map<string, number>();
  let busyUs = 0;
  for (const profile of profiles) {
    const byId = new Map<number, ProfileNode>();
    const parentOf = new Map<number, number>();
    for (const node of profile.nodes) {
      byId.set(node.id, node);
      for (const child of node.children ?? []) parentOf.set(child, node.id);
    }
    // Each sample's files, computed once per node: walking to the root for every sample is slow
    // for profiles of a few hundred thousand samples.
    const filesOfNode = new Map<number, readonly string[]>();
    const filesOf = (id: number): readonly string[] => {
      const known = filesOfNode.get(id);
      if (known !== undefined) return known;
      const files = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
        const node = byId.get(at);
        if (node !== undefined && node.callFrame.url !== "") files.add(fileOf(node.callFrame.url));
      }
      const found = [...files];
      filesOfNode.set(id, found);
      return found;
    };
    const intervalUs = typicalIntervalUs(profile.timeDeltas);
    for (let at = 0; at < profile.samples.length; at++) {
      const node = byId.get(profile.samples[at] as number);
      // A sample's time is the gap to the next one (V8 records the gap before each sample). A gap
      // of many intervals is a process that was stopped, not a frame that ran: bench:compare
      // stops the idle cluster with SIGSTOP, and the frame sampled before a 20 s stop would
      // otherwise be charged with it. Such a gap counts as one interval.
      const gapUs = Math.max(0, profile.timeDeltas[at + 1] ?? 0);
      const us = gapUs > pauseIntervals * intervalUs ? intervalUs : gapUs;
      if (node === undefined || node.callFrame.functionName === idleFrame) continue;
      busyUs += us;
      const frame = frameOf(node);
      selfUs.set(frame, (selfUs.get(frame) ?? 0) + us);
      for (const file of filesOf(node.id)) fileUs.set(file, (fileUs.get(file) ?? 0) + us);
    }
  }
  const ranked = (totals: Map<string, number>): FrameShare[] =>
    [...totals]
      .map(([frame, us]) => ({ frame, share: busyUs === 0 ? 0 : us / busyUs }))
      .sort((a, b) => b.share - a.share || a.frame.localeCompare(b.frame));
  return { busyMs: busyUs / 1000, selfFrames: ranked(selfUs), files: ranked(fileUs) };
}

/** The summary with only its `top` frames and files (what a results file keeps). */
export function topOfSummary(summary: ProfileSummary, top: number): ProfileSummary {
  return { ...summary, selfFrames: summary.selfFrames.slice(0, top), files: summary.files.slice(0, top) };
}

const percent = (share: number): string => `${(share * 100).toFixed(1)} %`;

/** Two markdown tables: the `top` frames by self time, and the `top` files by inclusive time. */
export function renderProfileMarkdown(summary: ProfileSummary, top = 20): string {
  const rows = (shares: readonly FrameShare[]): string[] =>
    shares.slice(0, top).map((row) => `| ${percent(row.share)} | \`${row.frame.replaceAll("|", "\\|")}\` |`);
  return [
    `Busy time: ${(summary.busyMs / 1000).toFixed(1)} s over the profiles (idle left out).`,
    "",
    "| self | frame |",
    "|---:|---|",
    ...rows(summary.selfFrames),
    "",
    "| inclusive | file |",
    "|---:|---|",
    ...rows(summary.files),
  ].join("\n");
}

/** Reads and checks one `.cpuprofile` file; throws naming the file and the fix. */
export function readCpuProfile(file: string): CpuProfile {
  const bytes = statSync(file).size;
  if (bytes > cpuProfileBytesMax)
    throw new Error(
      `${file} is ${bytes} bytes, more than the ${cpuProfileBytesMax} this reads; profile a shorter run`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(
      `${file} is not JSON (${error instanceof Error ? error.message : String(error)}); pass the .cpuprofile files node --cpu-prof wrote`,
    );
  }
  return asCpuProfile(parsed, file);
}

/** Every `.cpuprofile` in `dir` (the servers of a run), read and checked. */
export function readCpuProfiles(dir: string): CpuProfile[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".cpuprofile"))
    .sort()
    .map((name) => readCpuProfile(join(dir, name)));
}
