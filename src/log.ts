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
  private sorted: string[] = [];

  add(value: string | undefined): void {
    if (value === undefined) return;
    for (const part of [value, ...value.split(/\r?\n/)]) {
      const v = part.trim();
      if (v.length >= 4 && !this.values.has(v)) {
        this.values.add(v);
        this.sorted = [...this.values].sort((a, b) => b.length - a.length);
      }
    }
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
    let line: string;
    if (logger.format === 'json') {
      line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...Object.fromEntries(entries) });
    } else {
      const rest = entries.map(([k, v]) => `${k}=${quoteField(String(v))}`).join(' ');
      line = `vaultrun ${level}: ${msg}${rest ? ` ${rest}` : ''}`;
    }
    try {
      write(`${masker.mask(line)}\n`);
    } catch {
      // stderr closed: nothing sensible to do, and logging must never crash the run.
    }
  }
  return logger;
}
