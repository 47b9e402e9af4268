import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "bin", "conclave.js");
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

/** Runs the real `conclave` bin in a child process, as a user would. */
function conclave(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("conclave command", () => {
  it("--version prints the package version", () => {
    const result = conclave("--version");
    assert.equal(result.status, 0);
    assert.equal(result.stdout.trim(), version);
  });

  it("--help lists the commands", () => {
    const result = conclave("--help");
    assert.equal(result.status, 0);
    assert.match(result.stdout, /Usage: conclave/);
    assert.match(result.stdout, /cookie/);
  });

  it("an unknown command fails with a plain message and a non-zero exit", () => {
    const result = conclave("frobnicate");
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /unknown command 'frobnicate'/);
    assert.match(result.stderr, /conclave --help/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  });

  it("an unknown option fails the same way", () => {
    const result = conclave("--frob");
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /unknown option '--frob'/);
  });

  it("cookie prints a fresh 256-bit secret each time", () => {
    const first = conclave("cookie").stdout.trim();
    const second = conclave("cookie").stdout.trim();
    assert.match(first, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(first, second);
  });
});
