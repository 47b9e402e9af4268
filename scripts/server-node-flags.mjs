// V8 flags and glibc malloc settings for a Conclave server process (`conclave start`), shared by
// bin/conclave.js and the benchmarks so that both run the server the same way. Plain JavaScript:
// bin/conclave.js loads it before it knows which Node it runs on. Measured in
// docs/benchmarks.md (3-node cluster, 200,000 and 1,000,000 puts of 100 B at 64 in flight).
//
// --max-semi-space-size=4: V8 grows the young generation's semi-spaces up to 16 MiB each (three
// of them) under a steady allocation rate, and keeps that memory. A node's allocation is
// short-lived (requests, frames, entries), so a 4 MiB cap costs more frequent but shorter
// scavenges: 119-130 MB RSS per node instead of 165-177 MB after 20,000 puts, same throughput.
//
// --heap-growing-percent=100: after a full GC, V8 lets the old generation grow to up to four
// times what is live before the next one; 100 % (twice) keeps a node's heap nearer its live
// size. Not a cap: a burst of large queries still gets the memory it needs (a cap such as
// --max-old-space-size would stop the node out of memory instead). Lower values save a little
// more memory with small values (30 %: 122 instead of 134 MB mean) but cost throughput with
// large ones (10 KB values: 750 instead of 946 puts/s on 3 nodes), from more frequent GCs.
//
// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ = 128 KiB: glibc raises its mmap threshold
// each time a large block is freed (up to 32 MiB), after which large buffers come from the heap
// and freed memory stays in the process. Fixed thresholds give it back. Read by glibc when the
// process starts, so they are set in the environment of the exec; other C libraries ignore them.
//
// MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (libuv's pool, V8's helpers) an
// arena of its own, up to 8 per core, and each arena keeps freed memory. Two arenas: highest
// RSS per node while 1,000,000 keys are written 139.0-141.5 MB in two runs, against 141.5-146.3
// MB without (same puts/s within noise; docs/benchmarks.md, session 7).
//
// Together, while 200,000 keys of 100 B are written: 134 MB mean and 157 MB peak RSS per node,
// against 162-172 MB and 194-209 MB without them, at the same puts/s within noise.

/** Flags, each as Node takes it on its command line. */
export const serverNodeFlags = ["--max-semi-space-size=4", "--heap-growing-percent=100"];

/** Environment variables for a server process (glibc malloc tuning; see above). */
export const serverEnvironment = {
  MALLOC_MMAP_THRESHOLD_: "131072",
  MALLOC_TRIM_THRESHOLD_: "131072",
  MALLOC_ARENA_MAX: "2",
};

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

/** The environment variables still to set: none that the operator already set. */
export function missingServerEnvironment(environment) {
  return Object.fromEntries(
    Object.entries(serverEnvironment).filter(([name]) => environment[name] === undefined),
  );
}
