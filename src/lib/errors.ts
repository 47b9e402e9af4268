/**
 * Errors that callers match on by `code`, never by message text. A message says what went
 * wrong and how to fix it, in plain words; it never carries a stack trace to the user.
 *
 * @example
 * ```ts
 * try { await kv.put("k", "v"); }
 * catch (error) { if (isConclaveError(error, "CONCLAVE_NOT_PRIMARY")) retryElsewhere(); }
 * ```
 */
export class ConclaveError extends Error {
  override name = "ConclaveError";
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

/** True when `error` is a {@link ConclaveError}, optionally with the given code. */
export function isConclaveError(error: unknown, code?: string): error is ConclaveError {
  return error instanceof ConclaveError && (code === undefined || error.code === code);
}
