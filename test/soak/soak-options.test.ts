import assert from "node:assert/strict";
import { it } from "node:test";
import { parseSoakOptions } from "../../soak/options.ts";

it("soak options have bounded defaults and refuse bad values with a message naming the flag", () => {
  const defaults = parseSoakOptions([], 1_234_567);
  assert.ok(defaults.ok);
  assert.deepEqual(defaults.options, {
    minutes: 10,
    nodes: 3,
    seed: 234_567,
    writesPerSecond: 100,
    rssMaxMb: 250,
    snapshotEvery: null,
    faults: true,
    partitions: false,
    label: "soak",
    outDir: "bench/results",
    help: false,
  });
  const given = parseSoakOptions([
    "--minutes",
    "2.5",
    "--nodes",
    "5",
    "--seed",
    "9",
    "--label",
    "night",
    "--partitions",
    "on",
    "--snapshot-every",
    "64",
  ]);
  assert.ok(given.ok);
  assert.equal(given.options.partitions, true);
  assert.equal(given.options.minutes, 2.5);
  assert.equal(given.options.nodes, 5);
  assert.equal(given.options.seed, 9);
  assert.equal(given.options.label, "night");
  assert.equal(given.options.snapshotEvery, 64);
  for (const [argv, pattern] of [
    [["--minutes", "0"], /--minutes must be a number from 0\.1 to 240/],
    [["--snapshot-every", "10"], /--snapshot-every must be a number from 64 to 1000000/],
    [["--minutes", "999"], /--minutes must be a number from 0\.1 to 240/],
    [["--minutes"], /--minutes must be a number/],
    [["--nodes", "4"], /--nodes must be 3 or 5/],
    [["--faults", "maybe"], /--faults must be on or off/],
    [["--partitions", "yes"], /--partitions must be on or off/],
    [["--writes-per-second", "abc"], /--writes-per-second must be a number from 1 to 2000/],
    [["--label", "../x"], /--label must be 1 to 64 letters/],
    [["--bogus", "1"], /unknown option "--bogus"/],
  ] as const) {
    const parsed = parseSoakOptions(argv);
    assert.equal(parsed.ok, false, argv.join(" "));
    if (!parsed.ok) assert.match(parsed.message, pattern);
  }
});
