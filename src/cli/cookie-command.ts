/** `conclave cookie`: prints a new random cluster cookie (256 bits, base64url). */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";

export function registerCookieCommand(program: Command): void {
  program
    .command("cookie")
    .description("print a new random cluster cookie (the shared secret every member must hold)")
    .action(() => {
      process.stdout.write(`${randomBytes(32).toString("base64url")}\n`);
    });
}
