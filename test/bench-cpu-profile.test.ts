import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  asCpuProfile,
  type CpuProfile,
  renderProfileMarkdown,
  summarizeCpuProfiles,
} from "../bench/compare/cpu-profile.ts";

const frame = (functionName: string, url = "", lineNumber = 0) => ({ functionName, url, lineNumber });

/**
 * (root) → outer (src/a.ts) → inner (src/b.ts); (idle) and (garbage collector) under the root.
 * Sample i lasts timeDeltas[i + 1]: outer 100 µs, inner 200 µs, idle 100 µs, GC 100 µs, and the
 * last sample (inner) 0.
 */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 3, 5] },
    { id: 2, callFrame: frame("(idle)") },
    { id: 3, callFrame: frame("outer", "file:///work/main/dist/runtime/a.js", 9), children: [4] },
    { id: 4, callFrame: frame("inner", "file:///work/main/node_modules/msgpackr/pack.js", 41) },
    { id: 5, callFrame: frame("(garbage collector)") },
  ],
  samples: [3, 4, 4, 2, 5, 4],
  timeDeltas: [0, 100, 100, 100, 100, 100],
};

describe("bench CPU profile summary (bench/compare/cpu-profile.ts)", () => {
  it("shares busy time by frame (self) and by file (inclusive), leaving the idle samples out", () => {
    const summary = summarizeCpuProfiles([profile]);
    assert.equal(summary.busyMs, 0.4);
    assert.deepEqual(summary.selfFrames, [
      { frame: "inner (node_modules/msgpackr:42)", share: 0.5 },
      { frame: "(garbage collector)", share: 0.25 },
      { frame: "outer (dist/runtime/a.js:10)", share: 0.25 },
    ]);
    assert.deepEqual(summary.files, [
      { frame: "dist/runtime/a.js", share: 0.75 },
      { frame: "node_modules/msgpackr", share: 0.5 },
    ]);
  });

  it("sums several profiles (the servers of one run) before taking shares", () => {
    const onlyGc: CpuProfile = {
      nodes: [{ id: 7, callFrame: frame("(garbage collector)") }],
      samples: [7, 7],
      timeDeltas: [0, 400],
    };
    const summary = summarizeCpuProfiles([profile, onlyGc]);
    assert.equal(summary.busyMs, 0.8);
    assert.deepEqual(summary.selfFrames[0], { frame: "(garbage collector)", share: 0.625 });
    const markdown = renderProfileMarkdown(summary, 2);
    assert.match(markdown, /\| 62\.5 % \| `\(garbage collector\)` \|/);
    assert.match(markdown, /\| 25\.0 % \| `inner \(node_modules\/msgpackr:42\)` \|/);
    assert.doesNotMatch(markdown, /outer \(dist/, "only the top 2 frames");
  });

  it("counts a pause (a stopped process) as one sampling interval, not as time of the frame sampled before it", () => {
    // bench:compare stops the cluster not measured with SIGSTOP: 20 s between two samples.
    const paused: CpuProfile = {
      ...profile,
      samples: [3, 4, 3, 4, 3],
      timeDeltas: [0, 1000, 1000, 20_000_000, 1000],
    };
    const summary = summarizeCpuProfiles([paused]);
    assert.equal(summary.busyMs, 4);
    assert.deepEqual(
      summary.selfFrames.map((row) => [row.frame, row.share]),
      [
        ["inner (node_modules/msgpackr:42)", 0.5],
        ["outer (dist/runtime/a.js:10)", 0.5],
      ],
    );
  });

  it("refuses a file that is not a CPU profile, naming what is missing", () => {
    assert.throws(
      () => asCpuProfile({ traceEvents: [] }, "x.json"),
      /x\.json is not a V8 CPU profile.*--cpu-prof/,
    );
    assert.throws(
      () => asCpuProfile({ nodes: [], samples: [1], timeDeltas: [] }, "y.cpuprofile"),
      /1 samples but 0 timeDeltas/,
    );
    assert.throws(
      () => asCpuProfile({ nodes: [{ id: 1 }], samples: [], timeDeltas: [] }, "z.cpuprofile"),
      /z\.cpuprofile: node 0 has no numeric id or no callFrame/,
    );
  });

  it("bench/profile-top.ts prints the tables, and a clear error for a bad file", () => {
    const dir = mkdtempSync(join(tmpdir(), "conclave-profile-"));
    try {
      const good = join(dir, "a.cpuprofile");
      const bad = join(dir, "b.cpuprofile");
      writeFileSync(good, JSON.stringify(profile));
      writeFileSync(bad, "{");
      const run = (...args: string[]) =>
        spawnSync(process.execPath, ["bench/profile-top.ts", ...args], { encoding: "utf8" });
      const ok = run("--top", "1", good);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /\| 50\.0 % \| `inner \(node_modules\/msgpackr:42\)` \|/);
      const broken = run(bad);
      assert.equal(broken.status, 1);
      assert.match(broken.stderr, /b\.cpuprofile is not JSON/);
      assert.doesNotMatch(broken.stderr, /at .*\.ts:\d+/, "no stack trace");
      const badTop = run("--top", "zero", good);
      assert.equal(badTop.status, 2);
      assert.match(badTop.stderr, /--top takes a whole number/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
