import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { coverageEnv, detachCoverageEnv, flushCoverage } from '../coverage.js';
import { VaultrunError } from '../errors.js';

/**
 * Node reads a number of environment variables by itself, most of them once at start-up. Some would turn
 * vaultrun into a leak (NODE_DEBUG=http,net,tls,child_process prints our requests and the command's
 * environment; NODE_OPTIONS=--report-on-signal writes a report with the environment), send our token
 * elsewhere (NODE_USE_ENV_PROXY with HTTP(S)_PROXY) or trust other CAs (NODE_EXTRA_CA_CERTS,
 * NODE_USE_SYSTEM_CA, OPENSSL_CONF). They belong to the command, not to us: when one of the "neutralised"
 * variables is set, vaultrun re-executes itself once without them (same pid, same argv) and hands their
 * values, unchanged, to the command. The decision for each variable Node documents is in NODE_VARIABLES.
 */
export type NodeVariableDecision = 'neutralise' | 'honour';

export interface NodeVariable {
  name: string;
  decision: NodeVariableDecision;
  /** Only for the `node dist/vaultrun.cjs` form: the single executable ignores it (execArgvExtension none). */
  cjsOnly?: boolean;
  why: string;
}

export const NODE_VARIABLES: readonly NodeVariable[] = [
  {
    name: 'NODE_DEBUG',
    decision: 'neutralise',
    why: 'http, net, tls, fetch, child_process… print requests and the environment',
  },
  { name: 'NODE_DEBUG_NATIVE', decision: 'neutralise', why: 'C++ debug output of Node internals' },
  {
    name: 'NODE_OPTIONS',
    decision: 'neutralise',
    cjsOnly: true,
    why: 'any Node option: --require, --inspect, --report-*, --trace-*, --use-env-proxy, --use-openssl-ca…',
  },
  { name: 'NODE_V8_COVERAGE', decision: 'neutralise', why: 'writes coverage files as vaultrun' },
  { name: 'NODE_REDIRECT_WARNINGS', decision: 'neutralise', why: 'writes our warnings to a file' },
  { name: 'NODE_EXTRA_CA_CERTS', decision: 'neutralise', why: 'trusts more CAs: use VAULT_CACERT' },
  { name: 'NODE_USE_SYSTEM_CA', decision: 'neutralise', why: 'trusts the system store: use VAULT_CACERT' },
  {
    name: 'NODE_TLS_REJECT_UNAUTHORIZED',
    decision: 'neutralise',
    why: '0 would disable verification: use VAULT_SKIP_VERIFY',
  },
  {
    name: 'NODE_USE_ENV_PROXY',
    decision: 'neutralise',
    why: 'would send our requests (and token) through HTTP(S)_PROXY',
  },
  { name: 'OPENSSL_CONF', decision: 'neutralise', why: 'an OpenSSL configuration could weaken TLS' },
  { name: 'NODE_COMPILE_CACHE', decision: 'neutralise', why: 'code cache in a directory others may write' },
  { name: 'NODE_COMPILE_CACHE_PORTABLE', decision: 'neutralise', why: 'goes with NODE_COMPILE_CACHE' },
  { name: 'NODE_ICU_DATA', decision: 'neutralise', why: 'loads data files named by the environment' },
  { name: 'NODE_PATH', decision: 'neutralise', why: 'module search path (vaultrun is one bundle)' },
  {
    name: 'NODE_PRESERVE_SYMLINKS',
    decision: 'neutralise',
    why: 'module resolution (vaultrun is one bundle)',
  },
  { name: 'NODE_CHANNEL_FD', decision: 'neutralise', why: 'opens an IPC channel on an inherited fd' },
  { name: 'NODE_CHANNEL_SERIALIZATION_MODE', decision: 'neutralise', why: 'goes with NODE_CHANNEL_FD' },
  { name: 'NODE_UNIQUE_ID', decision: 'neutralise', why: 'makes Node a cluster worker' },
  { name: 'NODE_DISABLE_COMPILE_CACHE', decision: 'honour', why: 'only turns a cache off' },
  { name: 'NODE_NO_WARNINGS', decision: 'honour', why: 'only silences warnings' },
  { name: 'NODE_PENDING_DEPRECATION', decision: 'honour', why: 'deprecation warnings name no value' },
  { name: 'NODE_DISABLE_COLORS', decision: 'honour', why: 'colours only' },
  { name: 'NO_COLOR', decision: 'honour', why: 'colours only' },
  { name: 'FORCE_COLOR', decision: 'honour', why: 'colours only' },
  { name: 'NODE_REPL_EXTERNAL_MODULE', decision: 'honour', why: 'vaultrun never starts a REPL' },
  { name: 'NODE_REPL_HISTORY', decision: 'honour', why: 'vaultrun never starts a REPL' },
  {
    name: 'NODE_INSPECT_RESUME_ON_START',
    decision: 'honour',
    why: 'only with an inspector, which never starts',
  },
  { name: 'NODE_PENDING_PIPE_INSTANCES', decision: 'honour', why: 'Windows only' },
  { name: 'NODE_SKIP_PLATFORM_CHECK', decision: 'honour', why: 'start-up platform check only' },
  { name: 'NODE_TEST_CONTEXT', decision: 'honour', why: 'node --test only' },
  {
    name: 'SSL_CERT_FILE',
    decision: 'honour',
    why: 'only with --use-openssl-ca (NODE_OPTIONS, neutralised); CAs are explicit',
  },
  { name: 'SSL_CERT_DIR', decision: 'honour', why: 'as SSL_CERT_FILE' },
  {
    name: 'HTTP_PROXY',
    decision: 'honour',
    why: 'only with NODE_USE_ENV_PROXY (neutralised); our agents never use it',
  },
  { name: 'HTTPS_PROXY', decision: 'honour', why: 'as HTTP_PROXY' },
  { name: 'NO_PROXY', decision: 'honour', why: 'as HTTP_PROXY' },
  { name: 'TZ', decision: 'honour', why: 'time zone of log timestamps' },
  { name: 'UV_THREADPOOL_SIZE', decision: 'honour', why: 'thread pool size' },
  { name: 'UV_USE_IO_URING', decision: 'honour', why: 'libuv back-end choice' },
];

/** The variable carrying the neutralised values across the re-exec (JSON), removed again at once. */
export const NODE_ENV_STASH = 'VAULTRUN_NODE_ENV_STASH';

/** Pure: which variables of `env` are neutralised in this form (single executable or not). */
export function neutralisedIn(env: Readonly<Record<string, string | undefined>>, sea: boolean): string[] {
  return NODE_VARIABLES.filter(
    (v) => v.decision === 'neutralise' && !(sea && v.cjsOnly) && env[v.name] !== undefined,
  ).map((v) => v.name);
}

/**
 * Pure: the argv and environment to re-execute with. The single executable sees [exe, exe, ...args] and
 * takes no Node options; `node vaultrun.cjs` keeps its explicit Node options (process.execArgv).
 */
export function reexecPlan(
  env: Readonly<Record<string, string | undefined>>,
  names: readonly string[],
  proc: { argv0: string; argv: readonly string[]; execArgv: readonly string[]; sea: boolean },
): { argv: string[]; env: Record<string, string> } {
  const stash: Record<string, string> = {};
  const next: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (names.includes(name)) stash[name] = value;
    else next[name] = value;
  }
  next[NODE_ENV_STASH] = JSON.stringify(stash);
  // `--` before the script: Node then reads no --env-file of vaultrun's (envFilesNodeRead).
  const args = proc.sea ? proc.argv.slice(2) : [...proc.execArgv, '--', ...proc.argv.slice(1)];
  return { argv: [proc.argv0, ...args], env: next };
}

/** Pure: the values to give back to the command, from the stash (only names we neutralise). */
export function parseStash(text: string | undefined): Record<string, string> {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  if (typeof parsed !== 'object' || parsed === null) return out;
  const allowed = new Set(NODE_VARIABLES.filter((v) => v.decision === 'neutralise').map((v) => v.name));
  for (const [name, value] of Object.entries(parsed)) {
    if (allowed.has(name) && typeof value === 'string') out[name] = value;
  }
  return out;
}

/**
 * Pure: the env files Node itself read from its own command line (`cmdline`: /proc/self/cmdline) before any
 * script ran. Node reads every `--env-file` / `--env-file-if-exists` up to the first `--`, even after the
 * script's name (so vaultrun's own `--env-file`), and takes NODE_OPTIONS from those files: a file's
 * `NODE_OPTIONS=--require=…` would run code inside vaultrun. `node -- vaultrun.cjs …` (and the bundle started as
 * a program: its first lines do that) ends Node's options first.
 */
export function envFilesNodeRead(cmdline: readonly string[]): string[] {
  const files: string[] = [];
  for (let i = 1; i < cmdline.length; i++) {
    const arg = cmdline[i] ?? '';
    if (arg === '--') break;
    if (!arg.startsWith('--env-file')) continue;
    const eq = arg.indexOf('=');
    files.push(eq === -1 ? (cmdline[i + 1] ?? '') : arg.slice(eq + 1));
  }
  return files;
}

/** Why the start is refused because of Node's own reading of --env-file (envFileRefusal), found at start. */
let refusal: VaultrunError | undefined;

/**
 * The env files Node read itself before vaultrun started: found cheaply (no --env-file argument, nothing to
 * look up). The single executable's argv is [exe, exe, ...args], Node's was [exe, ...args]; under `node`, only
 * /proc/self/cmdline shows a `--` before the script.
 */
function envFilesReadByNode(sea: boolean): string[] {
  const named = (a: string) => a.startsWith('--env-file');
  if (!process.argv.some(named) && !process.execArgv.some(named)) return [];
  if (sea) return envFilesNodeRead([process.argv[0] ?? '', ...process.argv.slice(2)]);
  try {
    return envFilesNodeRead(readFileSync('/proc/self/cmdline', 'utf8').split('\0'));
  } catch {
    return []; // no /proc: not Linux
  }
}

/**
 * Pure but for `isFile`: why a start whose env files Node read itself is refused (exit 64), if it is:
 * - `node vaultrun.cjs --env-file F` (no `--` before the script): Node would have taken NODE_OPTIONS from F;
 *   refused so that this form is never the one in use;
 * - the single executable takes no Node option from F (execArgvExtension none) and reads a regular file as
 *   well as Node, but Node drains a pipe (`--env-file <(cmd)`) and leaves vaultrun an empty file: refused.
 */
export function envFileRefusal(
  files: readonly string[],
  sea: boolean,
  isFile: (path: string) => boolean,
): VaultrunError | undefined {
  if (!sea && files.length > 0) {
    return new VaultrunError(
      'USAGE',
      `--env-file ${files.join(', ')}: Node itself read this file before vaultrun started (Node reads --env-file anywhere before a --, and takes NODE_OPTIONS from it)`,
      {
        hint: "start vaultrun as `node -- vaultrun.cjs [options] -- COMMAND` (the first -- ends Node's own options) or run vaultrun.cjs as a program, or give the files in VAULTRUN_ENV_FILE",
      },
    );
  }
  const drained = files.filter((file) => !isFile(file));
  if (drained.length === 0) return undefined;
  return new VaultrunError(
    'USAGE',
    `--env-file ${drained.join(', ')}: not a regular file (a pipe, such as <(cmd)?), and the Node runtime inside vaultrun read it before vaultrun started, leaving nothing`,
    {
      hint: 'give it in VAULTRUN_ENV_FILE instead (e.g. VAULTRUN_ENV_FILE=<(cmd)), or write it to a file first',
    },
  );
}

/** Throws the refusal found at start (envFileRefusal); called first thing in runMain. */
export function refuseEnvFilesNodeRead(): void {
  if (refusal) throw refusal;
}

/** A regular file (after symbolic links); anything that cannot be looked at is left to vaultrun's own reading. */
function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return true;
  }
}

let restored: Record<string, string> = {};

/**
 * An executable its user cannot read (installed execute-only, mode 0711) should run non-dumpable, so that the
 * same uid cannot read our memory or environ under /proc. The kernel does so for an exec from an ordinary
 * process, but not for the first exec right after a switch of user (setpriv, su-exec, a container runtime's
 * USER): then vaultrun is dumpable, and one re-exec of itself makes it non-dumpable.
 */
export function dumpableExecuteOnly(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() === 0) return false;
  try {
    accessSync(process.execPath, constants.R_OK);
    return false; // readable: a re-exec would not change anything
  } catch {
    // not readable by us: execute-only
  }
  try {
    // /proc/<pid>/ of a dumpable process belongs to its uid; of a non-dumpable one, to root.
    return statSync('/proc/self/mem').uid === process.getuid?.();
  } catch {
    return false;
  }
}

/**
 * At the very start: re-execute without the neutralised variables if one is set, or when an execute-only
 * executable runs dumpable (does not return then); or take the stashed values back after such a re-exec. A
 * second re-exec never happens.
 */
export function neutraliseNodeVariables(knownSea?: boolean): void {
  const env = process.env;
  detachCoverageEnv(env);
  const stash = env[NODE_ENV_STASH];
  if (stash !== undefined) {
    restored = parseStash(stash);
    delete env[NODE_ENV_STASH];
    return;
  }
  // `knownSea`: the start-up snapshot's entry knows it runs in the single executable (src/main.ts), which
  // spares loading node:sea. Otherwise node:sea is loaded here, not at module load: its state must be the
  // running process's, not the start-up snapshot's (scripts/build-exe.mjs).
  const sea = knownSea ?? process.getBuiltinModule('node:sea').isSea();
  const files = envFilesReadByNode(sea);
  refusal = files.length > 0 ? envFileRefusal(files, sea, isRegularFile) : undefined;
  // Refused by runMain (refuseEnvFilesNodeRead): no re-exec, which would hide how Node was started.
  if (refusal) return;
  const names = neutralisedIn(env, sea);
  if (names.length === 0 && !dumpableExecuteOnly()) return;
  const plan = reexecPlan(env, names, {
    argv0: process.argv0,
    argv: process.argv,
    execArgv: process.execArgv,
    sea,
  });
  const execve = (
    process as unknown as { execve?: (f: string, a: string[], e: Record<string, string>) => never }
  ).execve;
  if (typeof execve !== 'function') {
    process.stderr.write(
      `vaultrun: ${names.join(', ')} set, and this Node (${process.version}) cannot re-execute without them; unset them for vaultrun\n`,
    );
    process.exit(70);
  }
  try {
    flushCoverage();
    execve.call(process, process.execPath, plan.argv, { ...plan.env, ...coverageEnv() });
  } catch (error) {
    process.stderr.write(
      `vaultrun: cannot re-execute itself${names.length ? ` without ${names.join(', ')}` : ''}: ${(error as NodeJS.ErrnoException).code ?? 'error'}\n`,
    );
    process.exit(70);
  }
}

/** The neutralised variables' values, for the command's environment (empty without a re-exec). */
export function restoredNodeVariables(): Readonly<Record<string, string>> {
  return restored;
}
