#!/usr/bin/env node
// The `conclave` command. Plain JavaScript so that it starts on any installed Node and
// re-executes itself under Node >= 24 when needed (see scripts/node24.mjs).
import { existsSync } from "node:fs";
import module from "node:module";
import { homedir } from "node:os";
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
  enableCompileCache();
  const { runCli } = await import(entry);
  process.exitCode = await runCli(process.argv.slice(2));
} else {
  runWithNode24([...serverFlags, entry, ...process.argv.slice(2)], serverEnv);
}

/**
 * V8's code cache for our modules (TypeScript included, after its types are stripped), kept on
 * disk: a node then starts in about half the CPU time (measured: 1.25 s → 0.6 s from the sources,
 * 0.73 s → 0.65 s from dist/), which is what a restarted member, five members restarted at
 * once on two cores, and every CLI command wait for. The cache lives in the user's cache
 * directory (not a shared /tmp one); NODE_COMPILE_CACHE=dir overrides it and
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off. It never throws: a directory that cannot be
 * written just means no cache (Node checks each entry against the source and V8's flags).
 */
function enableCompileCache() {
  if (typeof module.enableCompileCache !== "function") return;
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  module.enableCompileCache(process.env.NODE_COMPILE_CACHE || join(cacheHome, "conclave", "compile-cache"));
}
