import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { flushCoverage } from '../coverage.js';
import { VaultrunError } from '../errors.js';

/**
 * Finding and exec-ing the command. The command is looked up on the PATH the command itself will see (its
 * environment), as execvp does, with execvp's default PATH when it has none. process.execve does not search
 * PATH and, on some Node versions, aborts the process when it fails — so the path is resolved and checked first.
 */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function isExecutableFile(path: string): Promise<'ok' | 'missing' | 'not-executable'> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return 'not-executable';
    await access(path, constants.X_OK);
    return 'ok';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ||
      (error as NodeJS.ErrnoException).code === 'ENOTDIR'
      ? 'missing'
      : 'not-executable';
  }
}

export async function findExecutable(command: string, pathVar: string | undefined): Promise<string> {
  if (command === '') throw new VaultrunError('USAGE', 'the command is an empty string');
  if (command.includes('/')) {
    const full = isAbsolute(command) ? command : resolve(command);
    const state = await isExecutableFile(full);
    if (state === 'ok') return full;
    throw state === 'missing'
      ? new VaultrunError('COMMAND_NOT_FOUND', `command not found: ${command}`)
      : new VaultrunError('COMMAND_NOT_EXECUTABLE', `command is not an executable file: ${command}`, {
          hint: 'check its permissions (chmod +x) and that it is not a directory',
        });
  }
  let sawNotExecutable = false;
  for (const dir of (pathVar ?? DEFAULT_PATH).split(delimiter)) {
    const full = resolve(dir === '' ? '.' : dir, command);
    const state = await isExecutableFile(full);
    if (state === 'ok') return full;
    if (state === 'not-executable') sawNotExecutable = true;
  }
  if (sawNotExecutable) {
    throw new VaultrunError('COMMAND_NOT_EXECUTABLE', `command found on PATH but not executable: ${command}`);
  }
  throw new VaultrunError('COMMAND_NOT_FOUND', `command not found on PATH: ${command}`, {
    hint: `PATH is ${pathVar ?? `${DEFAULT_PATH} (default)`}; give an absolute path or fix PATH`,
  });
}

/**
 * Node ignores SIGPIPE and SIGXFSZ, and ignored dispositions survive execve: the command would start with them
 * ignored. A handled signal is reset to its default by execve, so handlers are installed just before.
 */
function restoreDefaultSignalsAcrossExec(): void {
  for (const signal of ['SIGPIPE', 'SIGXFSZ'] as const) process.on(signal, () => {});
}

/**
 * Node puts a pipe or terminal on fd 0-2 in non-blocking mode as soon as process.stdin/stdout/stderr is touched
 * (execa and debug do it when loaded), and that flag belongs to the open file description the command shares:
 * it would start with O_NONBLOCK stdio (`read` and `cat` fail with EAGAIN, Python raises BlockingIOError).
 */
function restoreBlockingStdio(): void {
  for (const stream of [process.stdin, process.stdout, process.stderr]) {
    const handle = (stream as unknown as { _handle?: { setBlocking?: (blocking: boolean) => number } })
      ._handle;
    try {
      handle?.setBlocking?.(true);
    } catch {
      // Not a pipe or terminal (a file is never non-blocking): nothing to restore.
    }
  }
}

/** Replaces this process with the command (same pid). Only returns by throwing. */
export function execReplace(
  file: string,
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
): never {
  const execve = (
    process as unknown as { execve?: (f: string, a: string[], e: Record<string, string>) => never }
  ).execve;
  if (typeof execve !== 'function') {
    throw new VaultrunError('INTERNAL', `process.execve is not available in Node ${process.version}`, {
      hint: 'use --supervise, or run vaultrun on Node 22.15 / 23.11 or newer',
    });
  }
  restoreDefaultSignalsAcrossExec();
  restoreBlockingStdio();
  try {
    flushCoverage();
    return execve.call(process, file, [...argv], { ...env });
  } catch (error) {
    throw new VaultrunError(
      'COMMAND_NOT_EXECUTABLE',
      `cannot execute ${join(file)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        hint: 'check the file format (a script needs a #! line) and its interpreter',
      },
    );
  }
}
