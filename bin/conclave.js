#!/usr/bin/env node
// The `conclave` command. Plain JavaScript so that it starts on any installed Node and
// re-executes itself under Node >= 24 when needed (see scripts/node24.mjs).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runWithNode24 } from "../scripts/node24.mjs";
import { missingServerNodeFlags } from "../scripts/server-node-flags.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// In a checkout we run the TypeScript sources; Node will not strip types under
// node_modules, so an installed package runs the emitted JavaScript in dist/.
const source = join(root, "src", "cli", "main.ts");
const built = join(root, "dist", "cli", "main.js");
const entry = existsSync(source) && !root.split(/[\\/]/).includes("node_modules") ? source : built;

const major = Number(process.versions.node.split(".")[0]);
// A server runs with the V8 flags of scripts/server-node-flags.mjs (a smaller young generation).
// They only act on the command line, so the process replaces itself (execve keeps the PID, so
// service managers and scripts that signal it by PID are unaffected).
const serverFlags =
  process.argv[2] === "start" ? missingServerNodeFlags(process.execArgv, process.env.NODE_OPTIONS) : [];
if (major >= 24 && serverFlags.length > 0 && typeof process.execve === "function") {
  process.execve(
    process.execPath,
    [process.execPath, ...process.execArgv, ...serverFlags, ...process.argv.slice(1)],
    process.env,
  );
}
if (major >= 24) {
  const { runCli } = await import(entry);
  process.exitCode = await runCli(process.argv.slice(2));
} else {
  runWithNode24([...serverFlags, entry, ...process.argv.slice(2)]);
}
