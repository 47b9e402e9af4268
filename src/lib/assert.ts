/**
 * Invariant assertions. A failed assertion is a bug in Conclave, never bad input: it throws
 * at once (fail-stop) so that a broken invariant cannot spread into the log or to peers.
 * Bad input is reported with {@link ConclaveError} instead.
 */
export class AssertionFailure extends Error {
  override name = "AssertionFailure";
}

/** Throws an {@link AssertionFailure} when `condition` is false. */
export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new AssertionFailure(typeof message === "function" ? message() : message);
  }
}

/** For exhaustive switches: the compiler proves this is unreachable. */
export function unreachable(value: never, what = "value"): never {
  throw new AssertionFailure(`unexpected ${what}: ${String(value)}`);
}
