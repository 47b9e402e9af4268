/**
 * `conclave start --config FILE`: runs a node until SIGTERM or SIGINT, then shuts down cleanly
 * (the in-flight fsync finishes, connections close) and exits 0. A fatal error (storage failure)
 * exits non-zero. Startup errors (bad config, weak cookie, identity mismatch, port in use,
 * corrupt storage) are `ConclaveError`s: main.ts prints them as one plain line.
 */
import type { Command } from "commander";
import { loadConfig } from "../config/load.ts";
import { createNode } from "../index.ts";
import { ConclaveError } from "../lib/errors.ts";

export function registerStartCommand(program: Command): void {
  program
    .command("start")
    .description("run a node until SIGTERM or SIGINT")
    .option("-c, --config <file>", "the node's TOML configuration file (see examples/conclave.toml)")
    .action(async (options: { config?: string }) => {
      const config = await loadConfig(options.config === undefined ? {} : { file: options.config });
      const node = await createNode(config);
      await node.start();
      const outcome = await new Promise<{ signal: string } | { fatal: Error }>((resolve) => {
        const onSignal = (signal: string): void => resolve({ signal });
        process.once("SIGTERM", onSignal);
        process.once("SIGINT", onSignal);
        node.on("fatal", ({ error }) => resolve({ fatal: error }));
      });
      await node.stop();
      if ("fatal" in outcome) {
        const code = (outcome.fatal as Partial<ConclaveError>).code ?? "CONCLAVE_FATAL";
        throw new ConclaveError(code, `the node stopped: ${outcome.fatal.message}`);
      }
    });
}
