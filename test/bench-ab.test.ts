/**
 * `npm run bench:ab` end to end, at a tiny size: it checks out HEAD beside the working tree,
 * builds both, runs real clusters of each in paired rounds, prints the summary, writes the
 * results file and leaves no server or temp directory behind. Correctness only: the figures of
 * a 200-put round say nothing about speed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";

const benchDirectories = () => readdirSync(tmpdir()).filter((name) => name.startsWith("conclave-bench-"));

it("bench:ab runs both builds in paired rounds, reports them and cleans up after itself", async () => {
  const outDir = mkdtempSync(join(tmpdir(), "bench-ab-test-"));
  const before = new Set(benchDirectories());
  try {
    const child = spawn(
      process.execPath,
      [
        "bench/compare/ab.ts",
        ...["--rounds", "2", "--ops", "200", "--warmup", "0", "--in-flight", "8"],
        ...["--label", "test", "--out-dir", outDir],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGTERM"), 180_000);
    const [code] = (await once(child, "exit")) as [number | null];
    clearTimeout(timer);
    assert.equal(code, 0, output);
    assert.match(output, /round 2 working tree: \d+ puts\/s/);
    assert.match(output, /\| puts\/s, median \| \d+ \| \d+ \| [\d.]+×; more puts\/s in \d of 2 rounds \|/);
    const file = readdirSync(outDir)[0] ?? "(none)";
    assert.ok(file.endsWith("-test.md"), `results file ${file}`);
    const text = readFileSync(join(outDir, file), "utf8");
    assert.match(text, /^# bench:ab, /);
    assert.match(text, /\| 2 \| \d+ \| \d+ \| \d+ \| \d+ \|/);
    assert.deepEqual(
      benchDirectories().filter((name) => !before.has(name)),
      [],
      "no temp directory left behind",
    );
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
