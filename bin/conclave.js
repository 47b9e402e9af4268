#!/usr/bin/env node
// The `conclave` command. Plain JavaScript so that it starts on any installed Node and
// re-executes itself under Node >= 24 when needed (see scripts/node24.mjs).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runWithNode24 } from "../scripts/node24.mjs";
import { missingServerEnvironment, missingServerNodeFlags } from "../scripts/server-node-flags.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// In a checkout we run the TypeScript sources; Node will not strip types under
// node_modules, so an installed package runs the emitted JavaScript in dist/.
const source = join(root, "src", "cli", "main.ts");
const built = join(root, "dist", "cli", "main.js");
const entry = existsSync(source) && !root.split(/[\\/]/).includes("node_modules") ? source : built;

const major = Number(process.versions.node.split(".")[0]);
// A server runs with the V8 flags and malloc settings of scripts/server-node-flags.mjs. They
// only act from the start of a process, so the process replaces itself (execve keeps the PID,
// so service managers and scripts that signal it by PID are unaffected).
const starting = process.argv[2] === "start";
const serverFlags = starting ? missingServerNodeFlags(process.execArgv, process.env.NODE_OPTIONS) : [];
const serverVariables = starting ? missingServerEnvironment(process.env) : {};
const serverEnv = { ...process.env, ...serverVariables };
const reexec = serverFlags.length > 0 || Object.keys(serverVariables).length > 0;
if (major >= 24 && reexec && typeof process.execve === "function") {
  process.execve(
    process.execPath,
    [process.execPath, ...process.execArgv, ...serverFlags, ...process.argv.slice(1)],
    serverEnv,
  );
}
if (major >= 24) {
  const { runCli } = await import(entry);
  process.exitCode = await runCli(process.argv.slice(2));
} else {
  runWithNode24([...serverFlags, entry, ...process.argv.slice(2)], serverEnv);
}
