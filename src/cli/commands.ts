/** The list of commands; each module adds one command to the program. */
import type { Command } from "commander";
import { registerClusterCommands } from "./cluster-commands.ts";
import { registerCookieCommand } from "./cookie-command.ts";
import { registerDevCommand } from "./dev-command.ts";
import { registerKvCommand } from "./kv-command.ts";
import { registerSqlCommand } from "./sql-command.ts";
import { registerStartCommand } from "./start-command.ts";

export function registerCommands(program: Command): void {
  registerCookieCommand(program);
  registerDevCommand(program);
  registerStartCommand(program);
  registerSqlCommand(program);
  registerKvCommand(program);
  registerClusterCommands(program);
}
