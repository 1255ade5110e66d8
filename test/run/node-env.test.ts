import { describe, expect, it } from 'vitest';
import {
  envFileRefusal,
  envFilesNodeRead,
  NODE_ENV_STASH,
  NODE_VARIABLES,
  neutralisedIn,
  parseStash,
  reexecPlan,
} from '../../src/run/node-env.js';

describe('neutralisedIn', () => {
  it('names the neutralised variables that are set; NODE_OPTIONS only outside the single executable', () => {
    const env = {
      NODE_DEBUG: 'http',
      NODE_OPTIONS: '--x',
      TZ: 'UTC',
      NODE_NO_WARNINGS: '1',
      HTTP_PROXY: 'p',
    };
    expect(neutralisedIn(env, false)).toEqual(['NODE_DEBUG', 'NODE_OPTIONS']);
    expect(neutralisedIn(env, true)).toEqual(['NODE_DEBUG']);
    expect(neutralisedIn({ TZ: 'UTC' }, false)).toEqual([]);
  });

  it('has one decision per variable', () => {
    const names = NODE_VARIABLES.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('reexecPlan', () => {
  const env = { NODE_DEBUG: 'http', VAULT_TOKEN: 't', PATH: '/bin' };

  it('node vaultrun.cjs: keeps Node options and the script (after --); the values go to the stash', () => {
    const plan = reexecPlan(env, ['NODE_DEBUG'], {
      argv0: 'node',
      argv: ['/usr/bin/node', '/app/vaultrun.cjs', '--supervise', '--', 'app'],
      execArgv: ['--no-warnings'],
      sea: false,
    });
    expect(plan.argv).toEqual([
      'node',
      '--no-warnings',
      '--',
      '/app/vaultrun.cjs',
      '--supervise',
      '--',
      'app',
    ]);
    expect(plan.env).toEqual({ VAULT_TOKEN: 't', PATH: '/bin', [NODE_ENV_STASH]: '{"NODE_DEBUG":"http"}' });
  });

  it('single executable: argv is [exe, exe, ...args], re-executed as [argv0, ...args]', () => {
    const plan = reexecPlan(env, ['NODE_DEBUG'], {
      argv0: 'vaultrun',
      argv: ['/usr/local/bin/vaultrun', '/usr/local/bin/vaultrun', '--', 'app'],
      execArgv: [],
      sea: true,
    });
    expect(plan.argv).toEqual(['vaultrun', '--', 'app']);
  });
});

describe('parseStash', () => {
  it('gives back only neutralised Node variables with string values', () => {
    expect(parseStash('{"NODE_DEBUG":"http","VAULT_TOKEN":"x","NODE_OPTIONS":1,"TZ":"UTC"}')).toEqual({
      NODE_DEBUG: 'http',
    });
    expect(parseStash('not json')).toEqual({});
    expect(parseStash(undefined)).toEqual({});
  });
});

describe('envFilesNodeRead (/proc/self/cmdline of node)', () => {
  it.each<[string[], string[]]>([
    [['node', '/a/vaultrun.cjs', '--env-file', 'x.env', '--', 'app'], ['x.env']],
    [
      ['node', '/a/vaultrun.cjs', '--env-file=x.env', '--env-file', 'y.env', '--', 'app'],
      ['x.env', 'y.env'],
    ],
    [['node', '--env-file-if-exists=o.env', '/a/vaultrun.cjs'], ['o.env']],
    // No `--` at all: the command's own arguments too.
    [['node', '/a/vaultrun.cjs', 'app', '--env-file', 'app.env'], ['app.env']],
    // Node stops at the first --: before the script, or before the command.
    [['node', '--', '/a/vaultrun.cjs', '--env-file', 'x.env', '--', 'app'], []],
    [['node', '/a/vaultrun.cjs', '--', 'app', '--env-file', 'app.env'], []],
    [['node', '/a/vaultrun.cjs', '--supervise', '--', 'app'], []],
    [['node', '/a/vaultrun.cjs', '--env-file'], ['']],
    [['node'], []],
    // argv[0] is never an option.
    [['--env-file=x'], []],
  ])('%j → %j', (cmdline, files) => {
    expect(envFilesNodeRead(cmdline)).toEqual(files);
  });
});

describe('envFileRefusal (files Node read, single executable, which are regular files)', () => {
  const regular = (path: string) => !path.startsWith('/dev/fd/');
  it('node vaultrun.cjs: any file Node read is refused, regular or not', () => {
    const error = envFileRefusal(['/app/a.env'], false, regular);
    expect(error?.code).toBe('USAGE');
    expect(error?.message).toMatch(/^--env-file \/app\/a\.env: Node itself read this file/);
    expect(error?.hint).toContain('node -- vaultrun.cjs');
  });
  it('the single executable: regular files are fine; a pipe is refused, naming only it', () => {
    expect(envFileRefusal(['/app/a.env', '/app/b.env'], true, regular)).toBeUndefined();
    const error = envFileRefusal(['/app/a.env', '/dev/fd/63'], true, regular);
    expect(error?.code).toBe('USAGE');
    expect(error?.message).toMatch(/^--env-file \/dev\/fd\/63: not a regular file/);
    expect(error?.hint).toContain('VAULTRUN_ENV_FILE');
  });
  it('nothing read by Node: nothing refused', () => {
    expect(envFileRefusal([], false, regular)).toBeUndefined();
    expect(envFileRefusal([], true, regular)).toBeUndefined();
  });
});
