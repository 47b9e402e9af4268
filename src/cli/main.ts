/**
 * The `conclave` command line. Each command lives in its own module under src/cli/commands/
 * and registers itself on the program; this file only wires them together and turns every
 * failure into a plain message and a non-zero exit (never a stack trace).
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { isConclaveError } from "../lib/errors.ts";
import { registerCommands } from "./commands.ts";

const packageJson = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

/** Builds the program; exported so tests can drive it without a process. */
export function buildProgram(): Command {
  const program = new Command("conclave")
    .description("Conclave: a highly-available cluster for Node.js services")
    .version(packageJson.version, "-v, --version", "print the version and exit")
    .showHelpAfterError("(run 'conclave --help' to see the commands and options)")
    .showSuggestionAfterError(true)
    .exitOverride();
  registerCommands(program);
  return program;
}

/** Runs the CLI and returns the exit code it would end with. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (help, version, or the usage error).
      return error.exitCode;
    }
    if (isConclaveError(error)) {
      process.stderr.write(`conclave: ${error.message}\n`);
      return 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`conclave: unexpected failure: ${message}\n`);
    return 70; // EX_SOFTWARE: a bug, not bad input
  }
}

if (import.meta.main) {
  process.exitCode = await runCli(process.argv.slice(2));
}
