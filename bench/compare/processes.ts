/**
 * Every server process the bench starts, tracked by PID so that only those are ever killed —
 * at the end, on SIGINT/SIGTERM, or when a test kills a leader. Output goes to a log file in
 * the cluster's temp directory, not through a pipe: piping would make the bench client read
 * (and pay CPU for) the servers' logs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** A fresh temp directory, removed by {@link removeTempDir} or {@link cleanUpNow}. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Starts `command` with its output appended to `logFile`; tracked until it exits. */
export function spawnServer(
  command: string,
  args: readonly string[],
  logFile: string,
  cwd: string,
  extraEnvironment: Readonly<Record<string, string>> = {},
): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    const env = { ...serverEnvironment(), ...extraEnvironment };
    const child = spawn(command, args, { cwd, stdio: ["ignore", fd, fd], env });
    live.add(child);
    child.once("exit", () => live.delete(child));
    return child;
  } finally {
    closeSync(fd);
  }
}

function serverEnvironment(): NodeJS.ProcessEnv {
  // CONCLAVE_* variables would override the generated configuration files.
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CONCLAVE_")));
}

/** True while `child` has not exited. */
/** The PID of a child that is still running, or null. */
export function runningPid(child: ChildProcess | null): number | null {
  return child !== null && isRunning(child) && child.pid !== undefined ? child.pid : null;
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGKILLs `child` (by its PID) and waits until it is gone. */
export async function killProcess(child: ChildProcess): Promise<void> {
  if (!isRunning(child) || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(child.pid, "SIGKILL");
  await exited;
}

/**
 * SIGTERM, then SIGKILL if it has not exited after `graceMs`: a server stopped this way writes
 * what it writes at exit (`--cpu-prof` profiles, for one).
 */
export async function terminateProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (!isRunning(child) || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => {
    if (isRunning(child) && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** SIGKILLs every server the bench started that is still running (synchronous: usable in exit handlers). */
export function killAllServers(): void {
  for (const child of live) {
    if (child.pid !== undefined && isRunning(child)) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** Kills every server and removes every temp directory, synchronously (for SIGINT and exit). */
export function cleanUpNow(): void {
  killAllServers();
  for (const dir of tempDirs) removeTempDir(dir);
}

/** A port that was free a moment ago (the OS picked it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== "object") throw new Error("the OS gave no port");
  return address.port;
}

/** Polls `check` every `pollMs` until it gives a non-null value; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | null>,
  pollMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(pollMs);
  }
}

/**
 * Runs a bench script's `main` and exits with its code: every server it started is killed and
 * every temp directory removed on exit, on SIGINT/SIGTERM (code 130) and on a failure (code 1,
 * the error's message on stderr, never a stack trace for an expected problem).
 */
export function runBenchScript(main: (argv: readonly string[]) => Promise<number>): void {
  process.on("exit", cleanUpNow);
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    process.once(name, () => {
      cleanUpNow();
      process.exit(130);
    });
  }
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      cleanUpNow();
      process.exit(1);
    },
  );
}
