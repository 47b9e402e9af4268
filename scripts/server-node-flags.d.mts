/** Types of server-node-flags.mjs (plain JavaScript, loaded by bin/conclave.js on any Node). */
export declare const serverNodeFlags: readonly string[];
export declare const serverEnvironment: Readonly<Record<string, string>>;
export declare function missingServerNodeFlags(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[];
export declare function missingServerEnvironment(
  environment: Readonly<Record<string, string | undefined>>,
): Record<string, string>;
