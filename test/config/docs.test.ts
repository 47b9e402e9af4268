import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../src/config/load.ts";
import { settingKeys } from "../../src/config/schema.ts";
import { timingProfile, timingProfileMs } from "../../src/config/timing.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const examplePath = join(root, "examples", "conclave.toml");

describe("documentation", () => {
  it("docs/configuration.md documents every key with its variable", async () => {
    const docs = await readFile(join(root, "docs", "configuration.md"), "utf8");
    for (const setting of settingKeys) {
      const row = docs
        .split("\n")
        .find((line) => line.startsWith(`| \`${setting.key}\` `) && line.includes(setting.envName));
      assert.ok(
        row !== undefined,
        `no row for ${setting.path} with ${setting.envName} in docs/configuration.md`,
      );
    }
  });

  it("examples/conclave.toml shows every key (set or commented) and loads as it is", async () => {
    const example = await readFile(examplePath, "utf8");
    for (const setting of settingKeys) {
      assert.match(
        example,
        new RegExp(`^#? ?${setting.key} = `, "m"),
        `${setting.path} missing from the example`,
      );
    }
    const config = await loadConfig({ file: examplePath, env: {} });
    assert.equal(config.node.name, "n1@10.0.0.5");
    assert.deepEqual(
      config.cluster.members.map((m) => m.nodeName),
      ["n1@10.0.0.5", "n2@10.0.0.6", "n3@10.0.0.7"],
    );
  });
});

describe("timing profiles", () => {
  it("lan: 50 ms heartbeats and a crashed primary noticed well under 1 s", () => {
    const lan = timingProfileMs("lan");
    assert.equal(lan.heartbeatMs, 50);
    assert.ok(lan.electionTimeoutMsMax < 1000 - 200, "room for a pre-vote and a vote round");
    assert.ok(lan.electionTimeoutMsMin >= 5 * lan.heartbeatMs, "several heartbeats may be lost first");
  });

  it("wan: 250 ms heartbeats and an election timeout around 2.5 s", () => {
    const wan = timingProfileMs("wan");
    assert.equal(wan.heartbeatMs, 250);
    assert.ok(wan.electionTimeoutMsMin >= 2000 && wan.electionTimeoutMsMax <= 3000);
  });

  it("every profile draws election timeouts from a real range", () => {
    for (const name of ["lan", "wan"] as const) {
      const profile = timingProfile(name);
      assert.ok(profile.electionTimeoutTicksMax > profile.electionTimeoutTicksMin);
      assert.ok(profile.heartbeatTicks < profile.electionTimeoutTicksMin);
    }
  });
});
