import { writeSync } from 'node:fs';

/**
 * Logging: stderr only (stdout belongs to the app or to `resolve` output), text or JSON lines, levels.
 * Every line passes through the masker, which replaces any resolved secret or credential we hold.
 */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
export const MASK = '<redacted>';

/** Values that must never appear in output. Short values (< 4 chars) are not masked: they would mangle text. */
export class Masker {
  private readonly values = new Set<string>();
  /** The values longest first, sorted when first needed after a change (not at each add: 200 secrets read
   * at start would sort 200 times). */
  private sortedCache: string[] | undefined = [];

  private get sorted(): string[] {
    this.sortedCache ??= [...this.values].sort((a, b) => b.length - a.length);
    return this.sortedCache;
  }

  add(value: string | undefined): void {
    if (value === undefined) return;
    for (const part of [value, ...value.split(/\r?\n/)]) {
      const v = part.trim();
      if (v.length >= 4 && !this.values.has(v)) {
        this.values.add(v);
        this.sortedCache = undefined;
        this.fragments = undefined;
      }
    }
  }

  private fragments: Set<string> | undefined;

  /** Every piece of FRAGMENT_LENGTH characters of every value, built when first needed after a change. */
  private fragmentSet(): Set<string> {
    if (this.fragments) return this.fragments;
    const set = new Set<string>();
    for (const v of this.sorted) {
      for (let i = 0; i + FRAGMENT_LENGTH <= v.length; i++) set.add(v.slice(i, i + FRAGMENT_LENGTH));
    }
    this.fragments = set;
    return set;
  }

  /**
   * For text we do not control (a server's error message, which may echo our request): masks every value as
   * mask() does, and also every word (run of non-space characters) that contains any FRAGMENT_LENGTH
   * characters of a value. So no piece of FRAGMENT_LENGTH characters or more of a credential survives — a
   * prefix, a suffix, a middle, a value cut by truncation — and the rest of the word it was in goes with it.
   * Call it before truncating such text.
   */
  maskUntrusted(text: string): string {
    const covered = new Uint8Array(text.length);
    let any = false;
    for (const v of this.sorted) {
      for (let at = text.indexOf(v); at >= 0; at = text.indexOf(v, at + 1)) {
        covered.fill(1, at, at + v.length);
        any = true;
      }
    }
    const fragments = this.fragmentSet();
    if (fragments.size > 0) {
      for (let i = 0; i + FRAGMENT_LENGTH <= text.length; i++) {
        if (fragments.has(text.slice(i, i + FRAGMENT_LENGTH))) {
          covered.fill(1, i, i + FRAGMENT_LENGTH);
          any = true;
        }
      }
    }
    if (!any) return text;
    // Widen each masked run to the word around it.
    for (let i = 0; i < text.length; i++) {
      if (covered[i] !== 1) continue;
      let a = i;
      while (a > 0 && !/\s/.test(text[a - 1] as string)) a--;
      let b = i;
      while (b < text.length && !/\s/.test(text[b] as string)) b++;
      covered.fill(2, a, b);
      i = b;
    }
    let out = '';
    for (let i = 0; i < text.length; ) {
      const start = i;
      const marked = covered[i] !== 0;
      while (i < text.length && (covered[i] !== 0) === marked) i++;
      out += marked ? MASK : text.slice(start, i);
    }
    return out;
  }

  /** The masked values, longest first: a new array after each addition (so callers can tell it changed). */
  list(): readonly string[] {
    return this.sorted;
  }

  mask(text: string): string {
    // Mark every character of every occurrence in the original text, then replace each marked run: values
    // that overlap leave no characters behind (replacing one after the other would leave the tail of the
    // second), and MASK itself is never matched.
    let covered: Uint8Array | undefined;
    for (const v of this.sorted) {
      for (let at = text.indexOf(v); at >= 0; at = text.indexOf(v, at + 1)) {
        covered ??= new Uint8Array(text.length);
        covered.fill(1, at, at + v.length);
      }
    }
    if (!covered) return text;
    let out = '';
    for (let i = 0; i < text.length; ) {
      const start = i;
      const marked = covered[i];
      while (i < text.length && covered[i] === marked) i++;
      out += marked ? MASK : text.slice(start, i);
    }
    return out;
  }
}

/**
 * Characters that must never reach a terminal or a log line raw: C0 controls (newlines included), DEL, C1
 * controls, the Unicode line/paragraph separators, and the invisible direction and zero-width marks (a bidi
 * override can make a line read differently from what it says).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;
/** Terminal escape sequences: CSI (ESC [ … final), OSC (ESC ] … BEL or ST), and any other ESC + one char. */
const ESCAPE_SEQUENCE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching escape sequences is the point
  /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[\s\S]?|\u009b[0-?]*[ -/]*[@-~]/g;

/**
 * Text that came from a server (an `errors` entry), made safe to print: escape sequences dropped, every other
 * control character, line break and invisible mark turned into a space, runs of spaces collapsed.
 */
export function sanitizeServerText(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, ' ').replace(CONTROL, ' ').replace(/\s+/g, ' ').trim();
}

/** Our own text, shown raw: controls as visible \uXXXX escapes (newlines are handled by the caller). */
function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Length of the shortest piece of a credential that untrusted text may not show (see maskUntrusted). */
export const FRAGMENT_LENGTH = 6;

export type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  level: LogLevel;
  /** Settable after creation: the --log-format flag is known only once the settings are loaded. */
  format: LogFormat;
  readonly masker: Masker;
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; default is a synchronous write to fd 2 (never lost before execve). */
  write?: (line: string) => void;
  masker?: Masker;
}

function quoteField(v: string): string {
  return /^[\w./:@,+-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const masker = options.masker ?? new Masker();
  const write = options.write ?? ((line: string) => writeSync(2, line));
  const logger: Logger = {
    level: options.level ?? 'info',
    format: options.format ?? 'text',
    masker,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
  function emit(level: Exclude<LogLevel, 'silent'>, message: string, fields: Fields = {}): void {
    if (RANK[level] < RANK[logger.level]) return;
    // Mask before formatting too: JSON and quoted fields escape '"', '\\' and control characters, and an
    // escaped secret would no longer match when the whole line is masked.
    const entries = Object.entries(fields)
      .filter((e): e is [string, string | number | boolean] => e[1] !== undefined)
      .map(([k, v]): [string, string | number | boolean] => [k, typeof v === 'string' ? masker.mask(v) : v]);
    const msg = masker.mask(message);
    // One record, one line per line of our message, each starting with "vaultrun LEVEL:" (text) or one JSON
    // object per record (json): no text inside a message or field can start a line of its own, and control
    // characters are escaped, never written raw (JSON.stringify leaves DEL, C1 and U+2028 raw: escaped here).
    let line: string;
    if (logger.format === 'json') {
      line = escapeControls(
        JSON.stringify({ time: new Date().toISOString(), level, msg, ...Object.fromEntries(entries) }),
      );
    } else {
      const rest = entries.map(([k, v]) => `${k}=${escapeControls(quoteField(String(v)))}`).join(' ');
      const body = msg.split('\n').map(escapeControls).join(`\nvaultrun ${level}: `);
      line = `vaultrun ${level}: ${body}${rest ? ` ${rest}` : ''}`;
    }
    try {
      write(`${masker.mask(line)}\n`);
    } catch {
      // stderr closed: nothing sensible to do, and logging must never crash the run.
    }
  }
  return logger;
}
