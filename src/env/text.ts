// What an environment variable can hold: text that is UTF-8, without NUL. Files read into variables (NAME_FILE
// sources, env files) are checked so that a variable gets its source's content exactly, or nothing.

/** Exact UTF-8, a BOM kept as U+FEFF (as Buffer#toString keeps it). */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Pure: why bytes cannot become an environment variable's value exactly, if they cannot. */
export function envTextProblem(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = STRICT_UTF8.decode(bytes);
  } catch {
    return 'is not UTF-8 text';
  }
  return text.includes('\0') ? 'holds a NUL byte' : undefined;
}
