/** The list of commands; each module adds one command to the program. */
import type { Command } from "commander";
import { registerCookieCommand } from "./cookie-command.ts";

export function registerCommands(program: Command): void {
  registerCookieCommand(program);
}
