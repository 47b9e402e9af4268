/** `conclave cookie`: prints a new random cluster cookie (256 bits, base64url). */
import type { Command } from "commander";
import { generateCookie } from "../config/cookie.ts";

export function registerCookieCommand(program: Command): void {
  program
    .command("cookie")
    .description("print a new random cluster cookie (the shared secret every member must hold)")
    .action(() => {
      process.stdout.write(`${generateCookie()}\n`);
    });
}
