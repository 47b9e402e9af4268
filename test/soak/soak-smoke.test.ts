/**
 * `npm run soak` for a quarter of a minute: real processes, faults, both workloads and every
 * check of the report (soak/DESIGN.md). Longer runs are for `npm run soak` itself. Where network
 * namespaces can be made (root), the nodes run in them (`--partitions on`); the network cuts
 * themselves are tested in test/e2e/partitions.test.ts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { networkLabUnavailable } from "../e2e/network-lab.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

it("a short soak injects faults, checks every promise and writes its report", {
  timeout: 180_000,
}, async (t) => {
  const outDir = mkdtempSync(join(tmpdir(), "conclave-soak-"));
  t.after(() => rmSync(outDir, { recursive: true, force: true }));
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, "soak", "main.ts"),
      "--minutes",
      "0.25",
      "--writes-per-second",
      "40",
      "--seed",
      "7",
      "--out-dir",
      outDir,
      // As root (CI), the nodes run in network namespaces, as `--partitions on` soaks do.
      ...(networkLabUnavailable() === null ? ["--partitions", "on"] : []),
    ],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const code = await new Promise<number | null>((resolve) =>
    child.once("exit", (exitCode) => resolve(exitCode)),
  );
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /^# Soak passed/m);
  for (const check of [
    "no node stopped by itself",
    "the KV history is linearizable",
    "no acknowledged write lost, on any member",
    "no write applied twice",
    "every member holds the same database",
  ]) {
    assert.match(stdout, new RegExp(`\\| ${check} \\| yes \\|`), check);
  }
  const faultRows = stdout.split("\n").filter((line) => /^\| (kill|pause|switchover)/.test(line));
  assert.ok(faultRows.length > 0, `at least one fault was injected:\n${stdout}`);
  const files = readdirSync(outDir);
  assert.equal(files.length, 1, `one report file (${files.join(", ")})`);
  const file = files[0] as string;
  assert.ok(file.endsWith("-soak.md"), `the report file (${file})`);
  assert.match(readFileSync(join(outDir, file), "utf8"), /^# Soak passed/);
});
