/**
 * The CLI starts without the node's code: `conclave status`, `kv`, `sql`, `cluster …` are run
 * often and by scripts, and loading the server (config schemas, SQLite, the HTTP server, the
 * transport) made each of them take 0.44–0.53 s instead of 0.16–0.18 s. Only `start` loads it.
 * Checked with a resolve hook that records every module a real Node process loads.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const mainUrl = pathToFileURL(join(root, "src", "cli", "main.ts")).href;

/** Runs the CLI with `argv` in a fresh process; returns the URLs of every module it loaded. */
function modulesLoadedBy(argv: readonly string[]): string[] {
  const script = `
    import { registerHooks } from "node:module";
    const loaded = [];
    registerHooks({
      resolve(specifier, context, nextResolve) {
        const resolved = nextResolve(specifier, context);
        loaded.push(resolved.url);
        return resolved;
      },
    });
    const { runCli } = await import(${JSON.stringify(mainUrl)});
    process.exitCode = await runCli(${JSON.stringify(argv)});
    process.stderr.write("LOADED " + JSON.stringify(loaded) + "\\n");
  `;
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 30_000,
  });
  const line = run.stderr.split("\n").find((text) => text.startsWith("LOADED "));
  assert.ok(line, `no module list; stderr: ${run.stderr}`);
  return JSON.parse(line.slice("LOADED ".length)) as string[];
}

describe("CLI start-up", { timeout: 60_000 }, () => {
  it("commands other than start load none of the node's code", () => {
    for (const argv of [["--version"], ["kv", "--help"]]) {
      const loaded = modulesLoadedBy(argv);
      assert.ok(
        loaded.some((url) => url.endsWith("/src/cli/commands.ts")),
        "the hook saw the CLI load",
      );
      const serverCode = loaded.filter(
        (url) =>
          url === "node:sqlite" ||
          url.endsWith("/src/index.ts") ||
          url.includes("/src/adapters/") ||
          url.includes("/src/runtime/") ||
          url.includes("/node_modules/zod/") ||
          url.includes("/node_modules/hono/"),
      );
      assert.deepEqual(serverCode, [], `conclave ${argv.join(" ")} loaded the node's code`);
    }
  });
});
