/** The real `conclave` CLI as a child process, for end-to-end tests of the operator commands. */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { testApiToken } from "./api-token.ts";

const binary = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "conclave.js");

/** Runs the real CLI; resolves with its exit code and output (never rejects). */
export function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CONCLAVE_"))),
      CONCLAVE_TOKEN: testApiToken,
    };
    execFile(process.execPath, [binary, ...args], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
