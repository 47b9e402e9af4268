// V8 flags for a Conclave server process (`conclave start`), shared by bin/conclave.js and the
// benchmarks so that both run the server the same way. Plain JavaScript: bin/conclave.js loads
// it before it knows which Node it runs on.
//
// Why: V8 grows the young generation's semi-spaces up to 16 MiB each (three of them) under a
// steady allocation rate, and keeps that memory. A node's allocation is short-lived (requests,
// frames, entries), so a 4 MiB cap costs more frequent but shorter scavenges and, measured on
// a 3-node cluster (put x64, 20,000 puts, docs/benchmarks.md), kept each node at 119-130 MB RSS
// instead of 165-177 MB, at the same throughput within noise (3,198 vs 3,299 puts/s).

/** Flags, each as Node takes it on its command line. */
export const serverNodeFlags = ["--max-semi-space-size=4"];

/**
 * The flags still to add: none that the operator already set (on the command line or in
 * NODE_OPTIONS) under the same name.
 */
export function missingServerNodeFlags(execArgv, nodeOptions) {
  const given = [...execArgv, ...(nodeOptions ?? "").split(/\s+/)];
  return serverNodeFlags.filter((flag) => {
    const name = flag.split("=")[0];
    return !given.some((argument) => argument === name || argument.startsWith(`${name}=`));
  });
}
