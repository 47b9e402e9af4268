/**
 * A small SQLite tokenizer, enough to find function calls, keywords and literals without being
 * fooled by string literals, quoted identifiers or comments (a regex over the raw text would
 * rewrite `'now'` inside `'it is now'` or `-- random()`). It follows SQLite's own tokenizer
 * (tokenize.c): the same quoting rules, so the token boundaries are the ones SQLite will see.
 *
 * @example
 * ```ts
 * tokenizeSql("SELECT random() -- x").filter((t) => t.kind === "word"); // SELECT, random
 * ```
 */

/** The kinds of token that matter for rewriting; whitespace and comments are kept for output. */
export type SqlTokenKind =
  | "space"
  | "comment"
  | "word" // a keyword or bare identifier
  | "quoted" // "identifier", `identifier`, [identifier]
  | "string" // 'literal'
  | "blob" // X'hex'
  | "number"
  | "parameter" // ?, ?NNN, :name, @name, $name
  | "operator"; // punctuation, including ( ) , ; .

export interface SqlToken {
  readonly kind: SqlTokenKind;
  readonly text: string;
  /** Offset of the first character in the statement text. */
  readonly start: number;
}

function isIdentifierStart(char: string): boolean {
  return /[A-Za-z_]/.test(char) || char.charCodeAt(0) >= 0x80;
}

function isIdentifierPart(char: string): boolean {
  return /[A-Za-z0-9_$]/.test(char) || char.charCodeAt(0) >= 0x80;
}

/** End offset (exclusive) of a quoted run opened at `start` and closed by `close` (doubled = escaped). */
function quotedEnd(sql: string, start: number, close: string, doubledEscapes: boolean): number {
  let at = start + 1;
  while (at < sql.length) {
    if (sql[at] === close) {
      if (doubledEscapes && sql[at + 1] === close) {
        at += 2;
        continue;
      }
      return at + 1;
    }
    at += 1;
  }
  return sql.length; // unterminated: SQLite reports the error when it prepares the statement
}

function runEnd(sql: string, start: number, accepts: (char: string) => boolean): number {
  let at = start;
  while (at < sql.length && accepts(sql[at] as string)) at += 1;
  return at;
}

function numberEnd(sql: string, start: number): number {
  if (sql[start] === "0" && (sql[start + 1] === "x" || sql[start + 1] === "X")) {
    return runEnd(sql, start + 2, (char) => /[0-9A-Fa-f_]/.test(char));
  }
  let at = runEnd(sql, start, (char) => /[0-9_.]/.test(char));
  if (sql[at] === "e" || sql[at] === "E") {
    const signed = sql[at + 1] === "+" || sql[at + 1] === "-" ? at + 2 : at + 1;
    if (/[0-9]/.test(sql[signed] ?? "")) at = runEnd(sql, signed, (char) => /[0-9_]/.test(char));
  }
  return at;
}

const multiCharOperators = ["->>", "||", "<=", ">=", "==", "!=", "<>", "<<", ">>", "->"];

/** Where the token starting at `start` ends, and its kind. */
function scanToken(sql: string, start: number): { kind: SqlTokenKind; end: number } {
  const char = sql[start] as string;
  const next = sql[start + 1] ?? "";
  if (/\s/.test(char)) return { kind: "space", end: runEnd(sql, start, (c) => /\s/.test(c)) };
  if (char === "-" && next === "-") {
    const lineEnd = sql.indexOf("\n", start);
    return { kind: "comment", end: lineEnd === -1 ? sql.length : lineEnd };
  }
  if (char === "/" && next === "*") {
    const close = sql.indexOf("*/", start + 2);
    return { kind: "comment", end: close === -1 ? sql.length : close + 2 };
  }
  if (char === "'") return { kind: "string", end: quotedEnd(sql, start, "'", true) };
  if (char === '"' || char === "`") return { kind: "quoted", end: quotedEnd(sql, start, char, true) };
  if (char === "[") return { kind: "quoted", end: quotedEnd(sql, start, "]", false) };
  if ((char === "x" || char === "X") && next === "'") {
    return { kind: "blob", end: quotedEnd(sql, start + 1, "'", false) };
  }
  if (/[0-9]/.test(char) || (char === "." && /[0-9]/.test(next))) {
    return { kind: "number", end: numberEnd(sql, start) };
  }
  if (char === "?") return { kind: "parameter", end: runEnd(sql, start + 1, (c) => /[0-9]/.test(c)) };
  if ((char === ":" || char === "@" || char === "$") && isIdentifierStart(next)) {
    return { kind: "parameter", end: runEnd(sql, start + 1, isIdentifierPart) };
  }
  if (isIdentifierStart(char)) return { kind: "word", end: runEnd(sql, start, isIdentifierPart) };
  const operator = multiCharOperators.find((candidate) => sql.startsWith(candidate, start));
  return { kind: "operator", end: start + (operator?.length ?? 1) };
}

/** Splits one SQL text into tokens; concatenating every token's text gives the input back. */
export function tokenizeSql(sql: string): SqlToken[] {
  const tokens: SqlToken[] = [];
  let at = 0;
  while (at < sql.length) {
    const { kind, end } = scanToken(sql, at);
    tokens.push({ kind, text: sql.slice(at, end), start: at });
    at = end;
  }
  return tokens;
}

/** True for tokens SQLite ignores (whitespace and comments). */
export function isTrivia(token: SqlToken): boolean {
  return token.kind === "space" || token.kind === "comment";
}

/** The unquoted value of a 'string' token (`'it''s'` → `it's`). */
export function stringLiteralValue(token: SqlToken): string {
  return token.text
    .slice(1, token.text.endsWith("'") && token.text.length > 1 ? -1 : undefined)
    .replaceAll("''", "'");
}

/** The name an identifier token stands for: a bare word, or a quoted identifier without quotes. */
export function identifierName(token: SqlToken): string | null {
  if (token.kind === "word") return token.text;
  if (token.kind !== "quoted") return null;
  const open = token.text[0];
  const escaped = open === "[" ? "" : `${open}${open}`;
  const inner = token.text.slice(1, -1);
  return escaped === "" ? inner : inner.replaceAll(escaped, open as string);
}
