/**
 * `conclave kv get|put|del|watch` through the HTTP API client:
 * - `get KEY [--consistency L]` prints the value (exit 1 with a message when absent);
 * - `put KEY VALUE [--lease ID] [--prev-revision N]` prints the new revision;
 * - `del KEY` prints how many keys were deleted;
 * - `watch PREFIX [--from-revision N]` prints one JSON line per change until Ctrl-C.
 */
import type { Command } from "commander";
import type { Consistency } from "../client/index.ts";
import { ConclaveError } from "../lib/errors.ts";
import { clientFor, collectEndpoint, endpointDefault } from "./sql-command.ts";

function integer(text: string): number {
  if (!/^\d{1,15}$/.test(text))
    throw new ConclaveError("CONCLAVE_USAGE", `expected a non-negative integer, not ${JSON.stringify(text)}`);
  return Number(text);
}

type EndpointOptions = { endpoint?: string[]; token?: string; tokenFile?: string };

export function registerKvCommand(program: Command): void {
  const kv = program.command("kv").description("read and write the replicated key-value store");
  const endpointFlag = [
    `--endpoint <url>`,
    `a node's HTTP API (repeatable; default ${endpointDefault})`,
    collectEndpoint,
  ] as const;
  const tokenFlag = ["--token <token>", "the API token (default: CONCLAVE_TOKEN)"] as const;
  const tokenFileFlag = ["--token-file <path>", "a file holding the API token"] as const;

  kv.command("get")
    .argument("<key>")
    .option("--consistency <level>", "none, weak, linearizable (default) or strong")
    .option(...endpointFlag)
    .option(...tokenFlag)
    .option(...tokenFileFlag)
    .action(async (key: string, options: EndpointOptions & { consistency?: string }) => {
      const found = await clientFor(options.endpoint, options).kv.get(
        key,
        options.consistency === undefined ? {} : { consistency: options.consistency as Consistency },
      );
      if (found === null) throw new ConclaveError("CONCLAVE_KEY_NOT_FOUND", `no key ${key}`);
      process.stdout.write(`${found.text()}\n`);
    });

  kv.command("put")
    .argument("<key>")
    .argument("<value>")
    .option("--lease <id>", "attach a lease (its expiry deletes the key)", integer)
    .option("--prev-revision <n>", "write only if the key's mod revision is n (0: only if absent)", integer)
    .option(...endpointFlag)
    .option(...tokenFlag)
    .option(...tokenFileFlag)
    .action(
      async (
        key: string,
        value: string,
        options: EndpointOptions & { lease?: number; prevRevision?: number },
      ) => {
        const { revision } = await clientFor(options.endpoint, options).kv.put(key, value, {
          ...(options.lease === undefined ? {} : { lease: options.lease }),
          ...(options.prevRevision === undefined ? {} : { prevRevision: options.prevRevision }),
        });
        process.stdout.write(`revision ${revision}\n`);
      },
    );

  kv.command("del")
    .argument("<key>")
    .option(...endpointFlag)
    .option(...tokenFlag)
    .option(...tokenFileFlag)
    .action(async (key: string, options: EndpointOptions) => {
      const { deleted } = await clientFor(options.endpoint, options).kv.delete(key);
      process.stdout.write(`${deleted} deleted\n`);
    });

  kv.command("watch")
    .argument("[prefix]", "key prefix (default: every key)", "")
    .option("--from-revision <n>", "start at this revision (default: changes from now on)", integer)
    .option(...endpointFlag)
    .option(...tokenFlag)
    .option(...tokenFileFlag)
    .action(async (prefix: string, options: EndpointOptions & { fromRevision?: number }) => {
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        const changes = clientFor(options.endpoint, options).kv.watch(prefix, {
          signal: controller.signal,
          ...(options.fromRevision === undefined ? {} : { fromRevision: options.fromRevision }),
        });
        for await (const change of changes) {
          const value = change.value === null ? null : Buffer.from(change.value).toString("utf8");
          process.stdout.write(
            `${JSON.stringify({ revision: change.revision, type: change.type, key: change.key, value })}\n`,
          );
        }
      } catch (error) {
        if (!controller.signal.aborted) throw error;
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });
}
