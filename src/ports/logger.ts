/**
 * The logger port: structured logs, one object of fields plus a message (pino's calling
 * convention, so a pino logger is an adapter as it is). Fields are plain data.
 *
 * @example
 * ```ts
 * logger.warn({ peer: "n2", reason: "auth failed" }, "peer refused");
 * ```
 */

/** A structured log method: fields first, then a message. */
export type LogMethod = (fields: Record<string, unknown>, message: string) => void;

/** A narrow structured logger. */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}
